//! Source locations (`Makefile:3`) attached to rules, recipe lines, variables and errors.

use std::fmt;
use std::sync::Arc;

/// A place in a makefile: the file name as make shows it and a 1-based line number.
///
/// Displays as make prints it in messages: `Makefile:3`; line 0 means "no line" and displays the
/// file alone (built-in rules are at `<builtin>`, as make prints them).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Loc {
    /// The makefile's name as given (`-f` argument, include argument), shared between locations.
    pub file: Arc<str>,
    /// 1-based line number; for a multi-line construct, the line it starts on.
    pub line: u32,
}

impl Loc {
    /// A location in `file` at `line`.
    pub fn new(file: impl Into<Arc<str>>, line: u32) -> Loc {
        Loc {
            file: file.into(),
            line,
        }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}", self.file, self.line)
        }
    }
}
