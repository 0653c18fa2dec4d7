//! Conditionals: `ifeq`/`ifneq` (all quoting forms), `ifdef`/`ifndef`, `else` (also `else ifeq …`),
//! `endif`, with make's nesting rules and error messages.

use crate::db::{Database, Scope};
use crate::error::{Error, ErrorKind};
use crate::expand::Ctx;
use crate::host::Host;
use crate::loc::Loc;
use crate::pattern::is_space_char as is_ws;

/// One level of conditional: 0 interpreting, 1 ignoring (may switch at else), 2 done (a branch ran).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Level {
    pub ignoring: u8,
    pub seen_else: bool,
}

/// The conditional stack of one buffer being read.
#[derive(Clone, Debug, Default)]
pub(crate) struct Conds {
    pub levels: Vec<Level>,
}

impl Conds {
    /// Whether lines are currently ignored.
    pub(crate) fn ignoring(&self) -> bool {
        self.levels.iter().any(|l| l.ignoring != 0)
    }
}

/// What a conditional line did.
pub(crate) enum CondResult {
    /// Not a conditional directive.
    NotConditional,
    /// Handled.
    Done,
}

impl Database {
    /// make's `conditional_line`: `line` is collapsed and comment-free; `word` its first word.
    pub(crate) fn conditional_line(
        &mut self,
        host: &mut dyn Host,
        conds: &mut Conds,
        line: &str,
        loc: &Loc,
    ) -> Result<CondResult, Error> {
        let l = line.trim_start_matches(is_ws);
        let wend = l.find(is_ws).unwrap_or(l.len());
        let word = &l[..wend];
        if !matches!(
            word,
            "ifdef" | "ifndef" | "ifeq" | "ifneq" | "else" | "endif"
        ) {
            return Ok(CondResult::NotConditional);
        }
        let rest = l[wend..].trim_start_matches(is_ws);
        self.cond_directive(host, conds, word, rest, loc)?;
        Ok(CondResult::Done)
    }

    fn extratext(host: &mut dyn Host, loc: &Loc, word: &str) {
        host.stderr(&format!(
            "{loc}: extraneous text after '{word}' directive\n"
        ));
    }

    /// Apply a conditional directive line (`ifeq`…`endif`, `else`) to the stack of levels.
    fn cond_directive(
        &mut self,
        host: &mut dyn Host,
        conds: &mut Conds,
        word: &str,
        rest: &str,
        loc: &Loc,
    ) -> Result<(), Error> {
        match word {
            "endif" => {
                if !rest.is_empty() {
                    Self::extratext(host, loc, "endif");
                }
                if conds.levels.pop().is_none() {
                    return Err(Error::new(Some(loc.clone()), ErrorKind::ExtraneousEndif));
                }
                Ok(())
            }
            "else" => {
                let Some(o) = conds.levels.len().checked_sub(1) else {
                    return Err(Error::new(Some(loc.clone()), ErrorKind::ExtraneousElse));
                };
                if conds.levels[o].seen_else {
                    return Err(Error::new(Some(loc.clone()), ErrorKind::OnlyOneElse));
                }
                match conds.levels[o].ignoring {
                    0 => conds.levels[o].ignoring = 2,
                    1 => conds.levels[o].ignoring = 0,
                    _ => {}
                }
                if rest.is_empty() {
                    conds.levels[o].seen_else = true;
                    return Ok(());
                }
                let wend = rest.find(is_ws).unwrap_or(rest.len());
                let w2 = &rest[..wend];
                let r2 = rest[wend..].trim_start_matches(is_ws);
                if !matches!(w2, "ifdef" | "ifndef" | "ifeq" | "ifneq") {
                    Self::extratext(host, loc, "else");
                    return Ok(());
                }
                match self.cond_if(host, conds, w2, r2, loc)? {
                    false => {
                        // make has already pushed the new level when it finds the syntax bad, and
                        // leaves it there: the next `endif` closes it, not this conditional.
                        conds.levels.push(Level {
                            ignoring: 0,
                            seen_else: false,
                        });
                        Self::extratext(host, loc, "else");
                    }
                    true => {
                        let inner = conds.levels.pop().unwrap_or_default();
                        if conds.levels[o].ignoring < 2 {
                            conds.levels[o].ignoring = inner.ignoring;
                        }
                    }
                }
                Ok(())
            }
            _ => {
                if !self.cond_if(host, conds, word, rest, loc)? {
                    return Err(Error::new(Some(loc.clone()), ErrorKind::InvalidConditional));
                }
                Ok(())
            }
        }
    }

    /// Push a level for an `if…` line; `Ok(false)` for invalid syntax (nothing pushed).
    fn cond_if(
        &mut self,
        host: &mut dyn Host,
        conds: &mut Conds,
        word: &str,
        rest: &str,
        loc: &Loc,
    ) -> Result<bool, Error> {
        if conds.ignoring() {
            conds.levels.push(Level {
                ignoring: 1,
                seen_else: false,
            });
            return Ok(true);
        }
        let scope = Scope::GLOBAL;
        let ctx = Ctx {
            scope: &scope,
            loc: Some(loc),
            var_loc: None,
        };
        let truth;
        if word == "ifdef" || word == "ifndef" {
            let mut var = String::new();
            self.expand_into(host, rest, &ctx, &mut var)?;
            let mut it = crate::pattern::words(&var);
            let name = it.next().unwrap_or("").to_string();
            if it.next().is_some() {
                return Ok(false);
            }
            let defined = if name == ".VARIABLES" {
                true
            } else {
                self.lookup_var(&name, &scope)
                    .is_some_and(|(v, _)| !v.value.is_empty())
            };
            truth = defined == (word == "ifdef");
        } else {
            let b = rest.as_bytes();
            let Some(&first) = b.first() else {
                return Ok(false);
            };
            let termin = if first == b'(' { b',' } else { first };
            if termin != b',' && termin != b'"' && termin != b'\'' {
                return Ok(false);
            }
            let mut i = 1;
            let s1_start = 1;
            if termin == b',' {
                let mut count = 0i32;
                while i < b.len() {
                    match b[i] {
                        b'(' => count += 1,
                        b')' => count -= 1,
                        b',' if count <= 0 => break,
                        _ => {}
                    }
                    i += 1;
                }
            } else {
                while i < b.len() && b[i] != termin {
                    i += 1;
                }
            }
            if i >= b.len() {
                return Ok(false);
            }
            let mut s1_end = i;
            if termin == b',' {
                while s1_end > s1_start && (b[s1_end - 1] == b' ' || b[s1_end - 1] == b'\t') {
                    s1_end -= 1;
                }
            }
            i += 1;
            let mut s1 = String::new();
            self.expand_into(host, &rest[s1_start..s1_end], &ctx, &mut s1)?;
            if termin != b',' {
                while i < b.len() && crate::pattern::is_space(b[i]) {
                    i += 1;
                }
            }
            let termin2 = if termin == b',' {
                b')'
            } else {
                b.get(i).copied().unwrap_or(0)
            };
            if termin2 != b')' && termin2 != b'"' && termin2 != b'\'' {
                return Ok(false);
            }
            let s2_start;
            if termin2 == b')' {
                while i < b.len() && crate::pattern::is_space(b[i]) {
                    i += 1;
                }
                s2_start = i;
                let mut count = 0i32;
                while i < b.len() {
                    if b[i] == b'(' {
                        count += 1;
                    } else if b[i] == b')' {
                        if count <= 0 {
                            break;
                        }
                        count -= 1;
                    }
                    i += 1;
                }
            } else {
                i += 1;
                s2_start = i;
                while i < b.len() && b[i] != termin2 {
                    i += 1;
                }
            }
            if i >= b.len() {
                return Ok(false);
            }
            let s2_end = i;
            let tail = rest[i + 1..].trim_start_matches(is_ws);
            if !tail.is_empty() {
                Self::extratext(host, loc, word);
            }
            let mut s2 = String::new();
            self.expand_into(host, &rest[s2_start..s2_end], &ctx, &mut s2)?;
            truth = (s1 == s2) == (word == "ifeq");
        }
        conds.levels.push(Level {
            ignoring: u8::from(!truth),
            seen_else: false,
        });
        Ok(true)
    }
}
