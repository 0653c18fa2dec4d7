//! The rule database: everything a loaded makefile defines (variables, rules as written, pattern rules,
//! special targets, vpath directives), and the entry points the build half uses on it.

use crate::error::Error;
use crate::host::Host;
use crate::loc::Loc;
use crate::vars::{FxHashMap, FxHashSet, PatternVar, VarSet, Variable};
use std::sync::Arc;

/// One line of a recipe, unexpanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipeLine {
    /// Where the line starts.
    pub loc: Loc,
    /// The raw text with the recipe prefix removed. A backslash-newline inside the line is kept as make
    /// keeps it (it reaches the shell), and the recipe prefix that began the continuation line is removed,
    /// as make does before running it.
    pub text: String,
}

/// A recipe: the lines after a rule (and the text after `;` on the rule line, as the first line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipe {
    /// Where the recipe starts (the rule line for `target: ; cmd`, else the first recipe line), as make
    /// reports it in "overriding recipe" warnings.
    pub loc: Loc,
    /// The lines, in order. Empty for `target: ;`, which still counts as a recipe. A line holding only
    /// the recipe prefix gives an empty text (make runs nothing for it).
    pub lines: Vec<RecipeLine>,
}

/// An explicit rule as written (ordinary, double-colon, grouped, or one target of a static pattern rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The rule line's location.
    pub loc: Loc,
    /// The targets, after expansion. A grouped rule (`&:`) lists the whole group. A static pattern rule is
    /// recorded as one `Rule` per target (sharing the recipe), each with its `stem`.
    pub targets: Vec<String>,
    /// Normal prerequisites (after the first expansion, `%` substituted for static pattern rules).
    /// When `second_expansion` is set these are not final: call [`Database::expand_prereqs`] with
    /// `prereq_text`.
    pub prereqs: Vec<String>,
    /// Order-only prerequisites (after `|`), same rules as `prereqs`.
    pub order_only: Vec<String>,
    /// The whole prerequisite text after the first expansion (including any `|`), for second expansion.
    /// For a static pattern rule this is the prerequisite-pattern text (before `%` substitution).
    pub prereq_text: String,
    /// For a static pattern rule: the target pattern (`%.o`).
    pub static_pattern: Option<String>,
    /// For a static pattern rule: this target's stem (`$*`).
    pub stem: Option<String>,
    /// The recipe; `None` when the rule has none (not even `;`).
    pub recipe: Option<Arc<Recipe>>,
    /// `::`
    pub double_colon: bool,
    /// `&:`
    pub grouped: bool,
    /// `.SECONDEXPANSION` was in effect when the rule was read.
    pub second_expansion: bool,
}

/// A pattern rule (`%.o: %.c`), user-written, converted from a suffix rule, or built in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternRule {
    /// Where it was written (`<builtin>` with line 0 for built-in rules).
    pub loc: Loc,
    /// The target patterns, each containing one `%`.
    pub targets: Vec<String>,
    /// Prerequisite patterns (may contain `%`, or name plain files).
    pub prereqs: Vec<String>,
    /// Order-only prerequisite patterns.
    pub order_only: Vec<String>,
    /// The prerequisite text after the first expansion (including any `|`), for second expansion.
    pub prereq_text: String,
    /// The recipe; `None` for a rule without one.
    pub recipe: Option<Arc<Recipe>>,
    /// A terminal (`::`) match-anything rule.
    pub terminal: bool,
    /// One of make's built-in rules (absent with `-r`).
    pub builtin: bool,
    /// Converted from a suffix rule (`.c.o:`).
    pub from_suffix: bool,
    /// `.SECONDEXPANSION` was in effect when the rule was read.
    pub second_expansion: bool,
}

/// A `vpath PATTERN DIRS` directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpathDirective {
    /// The pattern (`%.c`), or a plain name.
    pub pattern: String,
    /// The directories, in order.
    pub dirs: Vec<String>,
}

impl VpathDirective {
    /// Whether the directive applies to `file` (its pattern, with make's `\%` escapes, matches).
    pub fn matches(&self, file: &str) -> bool {
        crate::pattern::matches(&self.pattern, file)
    }
}

/// The special targets, as sets of names and flags.
#[derive(Clone, Debug, Default)]
pub struct Specials {
    /// `.PHONY` prerequisites.
    pub phony: FxHashSet<String>,
    /// `.PRECIOUS` prerequisites (may be patterns with `%`).
    pub precious: FxHashSet<String>,
    /// `.INTERMEDIATE` prerequisites.
    pub intermediate: FxHashSet<String>,
    /// `.SECONDARY` prerequisites.
    pub secondary: FxHashSet<String>,
    /// `.SECONDARY` with no prerequisites: every target is secondary.
    pub secondary_all: bool,
    /// `.NOTINTERMEDIATE` prerequisites (may be patterns).
    pub notintermediate: FxHashSet<String>,
    /// `.NOTINTERMEDIATE` with no prerequisites.
    pub notintermediate_all: bool,
    /// `.IGNORE` prerequisites.
    pub ignore: FxHashSet<String>,
    /// `.IGNORE` with no prerequisites: like `-i`.
    pub ignore_all: bool,
    /// `.SILENT` prerequisites.
    pub silent: FxHashSet<String>,
    /// `.SILENT` with no prerequisites: like `-s`.
    pub silent_all: bool,
    /// `.LOW_RESOLUTION_TIME` prerequisites.
    pub low_resolution_time: FxHashSet<String>,
    /// `.DELETE_ON_ERROR` was mentioned as a target.
    pub delete_on_error: bool,
    /// `.EXPORT_ALL_VARIABLES` was mentioned, or a bare `export` was seen (and not undone by `unexport`).
    pub export_all: bool,
    /// `.NOTPARALLEL` was mentioned.
    pub notparallel: bool,
    /// `.ONESHELL` was mentioned.
    pub oneshell: bool,
    /// `.POSIX` was mentioned.
    pub posix: bool,
    /// `.SECONDEXPANSION` was mentioned (from that point on).
    pub second_expansion: bool,
    /// The known suffixes (`.SUFFIXES`), in order.
    pub suffixes: Vec<String>,
    /// The index in [`Database::rules`] of the `.DEFAULT` rule that holds its recipe, if any.
    pub default_rule: Option<usize>,
}

/// How to load a makefile: the parts of make's command line and environment the language needs.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `-f` files, in order; empty means the first of `GNUmakefile`, `makefile`, `Makefile` that exists.
    pub makefiles: Vec<String>,
    /// Command-line variable assignments as given (`VAR=value`, `VAR:=value`, `VAR+=value`...).
    pub cmdline_vars: Vec<String>,
    /// The process environment.
    pub env: Vec<(String, String)>,
    /// `-e`: environment variables override makefile assignments.
    pub env_overrides: bool,
    /// `-r`: no built-in implicit rules (and an empty default `.SUFFIXES`).
    pub no_builtin_rules: bool,
    /// `-R`: no built-in variables (implies `-r`).
    pub no_builtin_vars: bool,
    /// `-I` directories, searched for relative `include`s not found in the current directory.
    pub include_dirs: Vec<String>,
    /// The goals on the command line (`MAKECMDGOALS`).
    pub goals: Vec<String>,
    /// The value `MAKEFLAGS` shows (flags letters and ` -- VAR=value` parts), as the CLI computes it.
    /// When it holds `--warn-undefined-variables`, references to undefined variables are warned about.
    pub makeflags: String,
    /// The program `$(MAKE)` runs (`MAKE_COMMAND`).
    pub make_program: String,
    /// `MAKELEVEL` of this make (0 at top level).
    pub makelevel: u32,
    /// `--eval` strings, evaluated before the makefiles.
    pub eval: Vec<String>,
    /// How many times make restarted after remaking makefiles (`MAKE_RESTARTS`; 0 = unset).
    pub restarts: u32,
}

/// A makefile read (or attempted) while loading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MakefileRead {
    /// The name as make records it in `MAKEFILE_LIST` (found path) or as written when missing.
    pub name: String,
    /// The `include` line that asked for it; `None` for `-f`/default makefiles.
    pub loc: Option<Loc>,
    /// `-include`/`sinclude`: a missing file is not an error.
    pub optional: bool,
    /// The file did not exist (it may be remade by the build half).
    pub missing: bool,
}

/// What loading read, for the build half's "remake makefiles and restart" step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Every makefile read or attempted, in order.
    pub makefiles: Vec<MakefileRead>,
}

/// The automatic variables of the target being made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AutoVars {
    /// `$@`
    pub target: String,
    /// `$%` (archive member; always empty here)
    pub member: String,
    /// `$<`
    pub first_prereq: String,
    /// `$?`
    pub newer: Vec<String>,
    /// `$^` (duplicates removed)
    pub all: Vec<String>,
    /// `$+` (duplicates kept)
    pub all_dups: Vec<String>,
    /// `$|`
    pub order_only: Vec<String>,
    /// `$*`
    pub stem: String,
}

/// Where an expansion happens: which targets' variables are visible, and the automatic variables.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scope<'a> {
    /// Innermost first: the target being made, then the targets that needed it (target-specific variable
    /// inheritance; `private` stops it). Empty for the global scope.
    pub targets: &'a [&'a str],
    /// The automatic variables, when expanding a recipe.
    pub auto: Option<&'a AutoVars>,
}

impl Scope<'static> {
    /// The global scope: no target, no automatic variables.
    pub const GLOBAL: Scope<'static> = Scope {
        targets: &[],
        auto: None,
    };
}

/// Everything a loaded makefile defines.
#[derive(Clone, Debug, Default)]
pub struct Database {
    /// Explicit rules as written, in order.
    pub rules: Vec<Rule>,
    /// Pattern rules in make's search order: user rules, then converted suffix rules, then built-ins.
    pub pattern_rules: Vec<PatternRule>,
    /// Special targets.
    pub special: Specials,
    /// `vpath` directives in order.
    pub vpaths: Vec<VpathDirective>,
    pub(crate) by_target: FxHashMap<String, Vec<usize>>,
    pub(crate) globals: VarSet,
    pub(crate) target_vars: FxHashMap<String, VarSet>,
    pub(crate) pattern_vars: Vec<PatternVar>,
    pub(crate) locals: Vec<VarSet>,
    pub(crate) expanding: Vec<(String, usize)>,
    pub(crate) call_args: usize,
    pub(crate) depth: u32,
    pub(crate) stack_base: usize,
    pub(crate) state: crate::eval::ReadState,
}

impl Database {
    /// Read the makefiles of `opts` through `host` and evaluate them into a database.
    ///
    /// Missing `include`d files and missing `-f` files are recorded in the report, not errors.
    pub fn load(host: &mut dyn Host, opts: &LoadOptions) -> Result<(Database, LoadReport), Error> {
        crate::eval::load(host, opts)
    }

    /// A database with the built-ins and the environment of `opts`, before reading any makefile.
    /// `load` starts from this; tests use it with [`Database::eval_text`].
    pub fn new(host: &mut dyn Host, opts: &LoadOptions) -> Result<Database, Error> {
        let mut db = crate::eval::initial(host, opts)?;
        db.state.loading = false;
        Ok(db)
    }

    /// Evaluate makefile text as if read from `file` (what `$(eval)` and `--eval` do).
    pub fn eval_text(&mut self, host: &mut dyn Host, file: &str, text: &str) -> Result<(), Error> {
        let file: Arc<str> = Arc::from(file);
        let was = std::mem::replace(&mut self.state.loading, true);
        let r = self.eval_source(host, file, text, 1, false);
        self.state.loading = was;
        r
    }

    /// Expand `text` in `scope` (recipe lines, target-specific values, `SHELL`...).
    pub fn expand(
        &mut self,
        host: &mut dyn Host,
        text: &str,
        scope: &Scope<'_>,
    ) -> Result<String, Error> {
        self.expand_at(host, text, scope, None)
    }

    /// Like [`Database::expand`], reporting errors (`$(error)`, bad references) at `loc` (the recipe line).
    pub fn expand_at(
        &mut self,
        host: &mut dyn Host,
        text: &str,
        scope: &Scope<'_>,
        loc: Option<&Loc>,
    ) -> Result<String, Error> {
        let mut out = String::with_capacity(text.len());
        let ctx = crate::expand::Ctx {
            scope,
            loc,
            var_loc: None,
        };
        self.expand_into(host, text, &ctx, &mut out)?;
        Ok(out)
    }

    /// Second expansion of an explicit rule's prerequisite text (`.SECONDEXPANSION`), split into
    /// (normal, order-only).
    ///
    /// `stem` is the stem of a static pattern rule: every `%` of the text is replaced by it first (make
    /// turns each into `$*`, inside references too). `scope.auto` gives `$$@`, `$$*`, `$$<`, `$$^`...
    /// For pattern rules use [`Database::expand_pattern_prereqs`].
    pub fn expand_prereqs(
        &mut self,
        host: &mut dyn Host,
        prereq_text: &str,
        stem: Option<&str>,
        scope: &Scope<'_>,
        loc: Option<&Loc>,
    ) -> Result<(Vec<String>, Vec<String>), Error> {
        let text = match stem {
            Some(stem) => crate::pattern::subst_every_percent(prereq_text, stem),
            None => prereq_text.to_string(),
        };
        // make expands an explicit (or static pattern) rule's prerequisites in the target's own
        // variables only: what the targets that needed it define is not inherited here.
        let own = Scope {
            targets: scope.targets.get(..1).unwrap_or(&[]),
            auto: scope.auto,
        };
        let expanded = self.expand_at(host, &text, &own, loc)?;
        Ok(crate::eval::split_prereqs(&expanded))
    }

    /// Second expansion of a pattern rule's prerequisite text for a match with `stem` (the directory
    /// included when make prepends it): the first `%` of each word is replaced by the stem (a word may
    /// hold references with blanks, `$$(addsuffix .c,%)`), then the text is expanded, as make's
    /// implicit rule search does. Unlike [`Database::expand_prereqs`], the whole `scope` counts: the
    /// search runs while the targets that needed this one are being made, so their target-specific
    /// variables are seen.
    pub fn expand_pattern_prereqs(
        &mut self,
        host: &mut dyn Host,
        prereq_text: &str,
        stem: &str,
        scope: &Scope<'_>,
        loc: Option<&Loc>,
    ) -> Result<(Vec<String>, Vec<String>), Error> {
        let text = crate::pattern::subst_first_percent_per_word(prereq_text, stem);
        let expanded = self.expand_at(host, &text, scope, loc)?;
        Ok(crate::eval::split_prereqs(&expanded))
    }

    /// The environment of a recipe run in `scope` (make's `target_environment`): every exported
    /// variable of the scope (expanded; environment values as received), plus `MAKEFLAGS` and
    /// `MAKELEVEL` (incremented).
    pub fn recipe_env(
        &mut self,
        host: &mut dyn Host,
        scope: &Scope<'_>,
    ) -> Result<Vec<(String, String)>, Error> {
        crate::eval::recipe_env(self, host, scope)
    }

    /// The global variable `name`, if defined.
    pub fn var(&self, name: &str) -> Option<&Variable> {
        self.globals.get(name)
    }

    /// Define (or redefine) the global variable `name`, as an assignment of `origin` would: a variable
    /// from a stronger origin (command line, `override`) is left alone. For the CLI's adjustments after
    /// loading (the final `MAKEFLAGS`, for instance). Returns whether the value was set.
    pub fn define(
        &mut self,
        name: &str,
        value: &str,
        flavor: crate::vars::Flavor,
        origin: crate::vars::Origin,
    ) -> bool {
        match self.globals.get_mut(name) {
            Some(v) if v.origin > origin => false,
            Some(v) => {
                v.value = Arc::from(value);
                v.flavor = flavor;
                v.origin = origin;
                true
            }
            None => {
                self.globals
                    .insert(name.to_string(), Variable::new(value, flavor, origin));
                true
            }
        }
    }

    /// Define a variable as a command-line assignment (`VAR=value`, `VAR:=value`, `VAR+=value`...):
    /// for `VAR=value` words a makefile added to `MAKEFLAGS`, which make applies after reading.
    pub fn define_command_line(
        &mut self,
        host: &mut dyn Host,
        assignment: &str,
    ) -> Result<(), Error> {
        self.define_cmdline(host, assignment)
    }

    /// The variable `name` as seen in `scope` (target-specific, pattern-specific, then global).
    pub fn lookup(&self, name: &str, scope: &Scope<'_>) -> Option<Variable> {
        self.lookup_var(name, scope).map(|(v, _)| v)
    }

    /// Indexes in [`Database::rules`] of the rules naming `target`, in order.
    pub fn rules_for(&self, target: &str) -> &[usize] {
        self.by_target.get(target).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every target named by an explicit rule, in first-seen order.
    pub fn targets(&self) -> impl Iterator<Item = &str> {
        let mut seen = FxHashSet::default();
        self.rules
            .iter()
            .flat_map(|r| r.targets.iter())
            .filter(move |t| seen.insert(t.as_str()))
            .map(String::as_str)
    }

    /// The default goal (`.DEFAULT_GOAL`): the first target make would build with no goals.
    pub fn default_goal(&self) -> Option<String> {
        let v = self.globals.get(".DEFAULT_GOAL")?;
        let s = v.value.trim();
        (!s.is_empty()).then(|| s.to_string())
    }

    /// Whether `target` is `.PHONY`.
    pub fn is_phony(&self, target: &str) -> bool {
        self.special.phony.contains(target)
    }

    /// The directories to search for `file` (`vpath` directives matching it, in order, then `VPATH`).
    pub fn vpath_dirs(&mut self, host: &mut dyn Host, file: &str) -> Result<Vec<String>, Error> {
        let mut dirs = Vec::new();
        for v in &self.vpaths {
            if v.matches(file) {
                dirs.extend(v.dirs.iter().cloned());
            }
        }
        if self.globals.contains_key("VPATH") {
            let vpath = self.expand(host, "$(VPATH)", &Scope::GLOBAL)?;
            dirs.extend(crate::eval::split_path_list(&vpath));
        }
        Ok(dirs)
    }

    /// The `GPATH` directories.
    pub fn gpath_dirs(&mut self, host: &mut dyn Host) -> Result<Vec<String>, Error> {
        if !self.globals.contains_key("GPATH") {
            return Ok(Vec::new());
        }
        let g = self.expand(host, "$(GPATH)", &Scope::GLOBAL)?;
        Ok(crate::eval::split_path_list(&g))
    }
}
