//! What a makefile put into `MAKEFLAGS`, applied once reading is done (make's second
//! `decode_env_switches`): `VAR=value` words define command-line variables and `-R` removes the
//! built-in variables. Other flags are the CLI's business (it re-reads `MAKEFLAGS` itself).

use crate::db::{Database, Scope};
use crate::error::Error;
use crate::host::Host;
use crate::vars::{Flavor, Origin};

/// Short options that take an argument (the rest of the word, or the next word).
const SHORT_WITH_ARG: &[u8] = b"CfIoWE";
/// Short options whose argument, if any, is the rest of the word.
const SHORT_OPTIONAL_ARG: &[u8] = b"jlO";
/// Long options whose argument may be the next word.
const LONG_WITH_ARG: &[&str] = &[
    "directory",
    "file",
    "makefile",
    "include-dir",
    "old-file",
    "assume-old",
    "new-file",
    "assume-new",
    "what-if",
    "eval",
];

/// The decoded words of a `MAKEFLAGS` value that matter to the language.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct MakeflagsWords {
    /// `-R` / `--no-builtin-variables` is among the flags.
    pub no_builtin_vars: bool,
    /// `VAR=value` words, in order.
    pub assignments: Vec<String>,
}

/// Decode a `MAKEFLAGS` value as make does: a first word without `-` (and without `=`) is a string
/// of single-letter flags; after `--` every word is an argument.
pub(crate) fn decode(value: &str) -> MakeflagsWords {
    let mut out = MakeflagsWords::default();
    let words: Vec<&str> = crate::pattern::words(value).collect();
    let mut i = 0;
    let mut options_done = false;
    while i < words.len() {
        let w = words[i];
        i += 1;
        let cluster = if options_done {
            None
        } else if i == 1 && !w.starts_with('-') && !w.contains('=') {
            Some(w)
        } else if w == "--" {
            options_done = true;
            continue;
        } else if let Some(long) = w.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or(long);
            if name == "no-builtin-variables" {
                out.no_builtin_vars = true;
            }
            if !long.contains('=') && LONG_WITH_ARG.contains(&name) {
                i += 1;
            }
            continue;
        } else {
            w.strip_prefix('-').filter(|c| !c.is_empty())
        };
        let Some(cluster) = cluster else {
            if w.contains('=') {
                out.assignments.push(w.to_string());
            }
            continue;
        };
        let b = cluster.as_bytes();
        for (k, &c) in b.iter().enumerate() {
            if c == b'R' {
                out.no_builtin_vars = true;
            }
            if SHORT_WITH_ARG.contains(&c) {
                if k + 1 == b.len() {
                    i += 1;
                }
                break;
            }
            if SHORT_OPTIONAL_ARG.contains(&c) {
                break;
            }
        }
    }
    out
}

impl Database {
    /// Apply what the makefiles added to `MAKEFLAGS` (called once reading is done).
    /// `GNUMAKEFLAGS` is decoded first and then emptied (origin `override`), as make does.
    pub(crate) fn apply_makefile_makeflags(&mut self, host: &mut dyn Host) -> Result<(), Error> {
        let gnu = self.expand(host, "$(GNUMAKEFLAGS)", &Scope::GLOBAL)?;
        self.apply_decoded(host, &gnu)?;
        self.set_global("GNUMAKEFLAGS", "", Flavor::Simple, Origin::Override);
        let value = self.expand(host, "$(MAKEFLAGS)", &Scope::GLOBAL)?;
        if value != self.state.makeflags_parse {
            self.apply_decoded(host, &value)?;
        }
        Ok(())
    }

    fn apply_decoded(&mut self, host: &mut dyn Host, value: &str) -> Result<(), Error> {
        let decoded = decode(value);
        for a in &decoded.assignments {
            self.define_cmdline_unrecorded(host, a)?;
        }
        if decoded.no_builtin_vars {
            crate::builtin::undefine_variables(self);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decoding() {
        let d = decode(" X=1 -R Y=2");
        assert!(d.no_builtin_vars);
        assert_eq!(d.assignments, vec!["X=1", "Y=2"]);
        assert!(decode("kR").no_builtin_vars);
        assert!(!decode("k -IR").no_builtin_vars);
        assert!(!decode("-C R").no_builtin_vars);
        assert!(decode("-k --no-builtin-variables").no_builtin_vars);
        assert!(!decode("--eval R").no_builtin_vars);
        assert_eq!(decode("k -- A=1 B=x").assignments, vec!["A=1", "B=x"]);
        assert!(decode("X=1").assignments == vec!["X=1"]);
    }
}
