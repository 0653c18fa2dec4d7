//! Language errors: what went wrong while reading or expanding a makefile, with make's exact wording.

use crate::loc::Loc;
use std::fmt;

/// A fatal error of the Make language, with the location make reports for it.
///
/// `Display` renders make's message without the program-name prefix:
/// `Makefile:3: *** missing separator.  Stop.` (or `*** …  Stop.` when there is no location,
/// in which case the caller prefixes `rmake-remote: `).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    /// Where make would say the error is; `None` for errors make reports with the program name.
    pub loc: Option<Loc>,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl Error {
    /// An error of `kind` at `loc`.
    pub fn new(loc: Option<Loc>, kind: ErrorKind) -> Error {
        Error { loc, kind }
    }

    /// The message alone, as make prints it between `*** ` and `.  Stop.`.
    pub fn message(&self) -> String {
        self.kind.to_string()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.loc {
            Some(loc) => write!(f, "{loc}: *** {}.  Stop.", self.kind),
            None => write!(f, "*** {}.  Stop.", self.kind),
        }
    }
}

/// The kinds of fatal language errors, each displayed with GNU make 4.3's wording.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A line that is neither a rule, an assignment nor a directive.
    #[error("missing separator")]
    MissingSeparator,
    /// Like `MissingSeparator`, for a line starting with eight spaces.
    #[error("missing separator (did you mean TAB instead of 8 spaces?)")]
    MissingSeparatorTab,
    /// A recipe line before any rule.
    #[error("recipe commences before first target")]
    RecipeBeforeFirstTarget,
    /// `$(` or `${` without its closing parenthesis.
    #[error("unterminated variable reference")]
    UnterminatedVariableRef,
    /// A function call without its closing parenthesis.
    #[error("unterminated call to function '{name}': missing '{close}'")]
    UnterminatedCall {
        /// Function name.
        name: String,
        /// The missing closing character.
        close: char,
    },
    /// End of file inside a conditional.
    #[error("missing 'endif'")]
    MissingEndif,
    /// `endif` without a conditional.
    #[error("extraneous 'endif'")]
    ExtraneousEndif,
    /// `else` without a conditional.
    #[error("extraneous 'else'")]
    ExtraneousElse,
    /// A second `else` in one conditional.
    #[error("only one 'else' per conditional")]
    OnlyOneElse,
    /// Malformed `ifeq`/`ifdef` line.
    #[error("invalid syntax in conditional")]
    InvalidConditional,
    /// Text after `else`/`endif` that is not a conditional.
    #[error("extraneous text after '{0}' directive")]
    ExtraneousText(String),
    /// End of file inside `define`.
    #[error("missing 'endef', unterminated 'define'")]
    MissingEndef,
    /// `endef` without `define`.
    #[error("extraneous 'endef'")]
    ExtraneousEndef,
    /// An assignment or `define` with an empty variable name.
    #[error("empty variable name")]
    EmptyVariableName,
    /// `define` with no name.
    #[error("empty variable name")]
    DefineNoName,
    /// Pattern and ordinary targets in one rule.
    #[error("mixed implicit and normal rules")]
    MixedRules,
    /// Pattern targets in a static pattern rule.
    #[error("mixed implicit and static pattern rules")]
    MixedStaticRules,
    /// The target pattern of a static pattern rule has no `%`.
    #[error("target pattern contains no '%'")]
    TargetPatternNoPercent,
    /// Several target patterns in a static pattern rule.
    #[error("multiple target patterns")]
    MultipleTargetPatterns,
    /// A target given with both `:` and `::`.
    #[error("target file '{0}' has both : and :: entries")]
    BothColons(String),
    /// `$(eval)` in a recipe defined a rule with prerequisites.
    #[error("prerequisites cannot be defined in recipes")]
    PrereqsInRecipe,
    /// A grouped rule (`&:`) without a recipe.
    #[error("grouped targets must provide a recipe")]
    GroupedNoRecipe,
    /// A target-specific assignment that cannot be parsed.
    #[error("Malformed target-specific variable definition")]
    MalformedTargetVar,
    /// A recursive variable whose expansion needs itself.
    #[error("Recursive variable '{0}' references itself (eventually)")]
    RecursiveVariable(String),
    /// A function called with too few arguments.
    #[error("insufficient number of arguments ({got}) to function '{name}'")]
    InsufficientArgs {
        /// Function name.
        name: String,
        /// How many were given.
        got: usize,
    },
    /// `$(word)`/`$(wordlist)` with a non-numeric argument.
    #[error("non-numeric {which} argument to '{func}' function: '{arg}'")]
    NonNumericArg {
        /// `first` or `second`.
        which: &'static str,
        /// Function name.
        func: &'static str,
        /// The offending text.
        arg: String,
    },
    /// `$(word 0,…)` or `$(wordlist 0,…)`.
    #[error("first argument to '{0}' function must be greater than 0")]
    ZeroIndex(&'static str),
    /// `$(wordlist 0,…)`.
    #[error("invalid first argument to 'wordlist' function: '{0}'")]
    WordlistStart(i64),
    /// `$(file)` with an operation other than `<`, `>`, `>>`.
    #[error("file: invalid file operation: {0}")]
    InvalidFileOp(String),
    /// `$(file <x,text)`: reading takes no text.
    #[error("file: too many arguments")]
    FileTooManyArgs,
    /// `$(file)` with no file name.
    #[error("file: missing filename")]
    FileMissingName,
    /// `$(file >x)` could not open or write the file.
    #[error("open: {path}: {reason}")]
    FileOpen {
        /// File name.
        path: String,
        /// The system's reason.
        reason: String,
    },
    /// `$(file <x)` could open `x` but not read it (a directory).
    #[error("read: {path}: {reason}")]
    FileRead {
        /// File name.
        path: String,
        /// The system's reason.
        reason: String,
    },
    /// `$(error …)` was expanded.
    #[error("{0}")]
    User(String),
    /// A makefile named with `-f` or included could not be read for a reason other than absence.
    #[error("{path}: {reason}")]
    Read {
        /// File name.
        path: String,
        /// The system's reason.
        reason: String,
    },
    /// `vpath`/`export` and friends used in a way make rejects, with make's text.
    #[error("{0}")]
    Other(String),
}
