//! Variables: values with flavor, origin and export status, and the sets (global, per-target,
//! per-pattern, `$(call)`/`$(foreach)` scopes) that hold them.

use crate::loc::Loc;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// Where a variable's value came from, as `$(origin)` names it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// Built in (`CC`, `MAKE`).
    Default,
    /// Imported from the environment.
    Environment,
    /// Defined in a makefile.
    File,
    /// Imported from the environment with `-e`.
    EnvironmentOverride,
    /// Given on the command line (`make X=1`).
    CommandLine,
    /// Defined with `override`.
    Override,
    /// An automatic variable (`$@`, `$(call)` arguments, `$(foreach)` variables).
    Automatic,
}

impl Origin {
    /// The word `$(origin)` returns.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Default => "default",
            Origin::Environment => "environment",
            Origin::File => "file",
            Origin::EnvironmentOverride => "environment override",
            Origin::CommandLine => "command line",
            Origin::Override => "override",
            Origin::Automatic => "automatic",
        }
    }
}

/// How a variable's value is expanded when referenced.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// `=`, `define`: expanded at every reference.
    Recursive,
    /// `:=`, `::=`: expanded once, at definition.
    Simple,
}

impl Flavor {
    /// The word `$(flavor)` returns.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Recursive => "recursive",
            Flavor::Simple => "simple",
        }
    }
}

/// A variable's export status (`export`/`unexport`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Export {
    /// Neither: exported only if it came from the environment or command line (or `.EXPORT_ALL_VARIABLES`).
    #[default]
    Default,
    /// `export VAR`.
    Yes,
    /// `unexport VAR`.
    No,
}

/// One variable definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    /// The value: unexpanded text for recursive variables, final text for simple ones.
    pub value: Arc<str>,
    /// Recursive or simple.
    pub flavor: Flavor,
    /// Where it came from.
    pub origin: Origin,
    /// Export status.
    pub export: Export,
    /// `private`: not inherited by prerequisites (target-specific) or targets (global).
    pub private: bool,
    /// A target- or pattern-specific `+=` whose value is appended to the inherited value at expansion.
    pub append: bool,
    /// Where it was defined (`None` for built-in, environment and command-line variables).
    pub loc: Option<Loc>,
}

impl Variable {
    /// A variable with default export status, not private, not appending.
    pub fn new(value: impl Into<Arc<str>>, flavor: Flavor, origin: Origin) -> Variable {
        Variable {
            value: value.into(),
            flavor,
            origin,
            export: Export::Default,
            private: false,
            append: false,
            loc: None,
        }
    }
}

/// A fast, non-cryptographic hasher (FxHash) for name-keyed maps.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A `HashMap` with [`FxHasher`].
pub type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
/// A `HashSet` with [`FxHasher`].
pub type FxHashSet<K> = std::collections::HashSet<K, BuildHasherDefault<FxHasher>>;

/// A set of variables by name.
pub type VarSet = FxHashMap<String, Variable>;

/// A pattern-specific assignment (`%.o: CFLAGS += -g`), kept in make's order.
#[derive(Clone, Debug)]
pub struct PatternVar {
    /// The target pattern (`%.o`).
    pub pattern: String,
    /// The variable name.
    pub name: String,
    /// The assignment operator's meaning.
    pub op: AssignOp,
    /// The value as written (already expanded for `:=`).
    pub var: Variable,
}

impl PatternVar {
    /// Whether the assignment applies to `target`: make (lookup_pattern_var) wants the name at least
    /// as long as the pattern, so the stem is never empty.
    pub fn applies_to(&self, target: &str) -> bool {
        crate::pattern::stem_of(&self.pattern, target).is_some_and(|s| !s.is_empty())
    }
}

/// The assignment operators.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum AssignOp {
    /// `=`
    Recursive,
    /// `:=` or `::=`
    Simple,
    /// `+=`
    Append,
    /// `?=`
    Conditional,
    /// `!=`
    Shell,
}
