//! The line evaluator (make's `eval`): reads logical lines of one buffer (a makefile, an `$(eval)`
//! text) and acts on each: recipe lines, assignments, `define`, conditionals, `export`/`unexport`,
//! `vpath`, `include`, and rule lines.

use super::assign::{define_op, parse_var_assignment};
use super::cond::{CondResult, Conds};
use super::recipe_text::{collapse_in_references, strip_continuation_prefix};
use super::rules::{PendingRule, RuleLine};
use crate::db::{Database, Recipe, RecipeLine, Scope, VpathDirective};
use crate::error::{Error, ErrorKind};
use crate::host::Host;
use crate::lexer::{collapse_continuations, remove_comments, Lexer};
use crate::loc::Loc;
use crate::pattern::is_space_char as ws;
use crate::vars::{Export, Flavor, Origin, Variable};
use std::sync::Arc;

fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches(ws);
    let end = s.find(ws).unwrap_or(s.len());
    (&s[..end], s[end..].trim_start_matches(ws))
}

/// The reading state of one buffer.
struct Reader {
    file: Arc<str>,
    conds: Conds,
    pending: Option<PendingRule>,
    no_targets: bool,
    set_default: bool,
    is_eval: bool,
    first_line: u32,
}

impl Database {
    /// Evaluate `text` as makefile lines read from `file`, the first numbered `first_line`.
    pub(crate) fn eval_source(
        &mut self,
        host: &mut dyn Host,
        file: Arc<str>,
        text: &str,
        first_line: u32,
        is_eval: bool,
    ) -> Result<(), Error> {
        let mut r = Reader {
            file,
            conds: Conds::default(),
            pending: None,
            no_targets: false,
            set_default: !self.state.no_default_goal,
            is_eval,
            first_line,
        };
        let mut lex = Lexer::new(text, first_line);
        let no_name = r.file.is_empty();
        let strip = |mut e: Error| {
            if no_name && e.loc.as_ref().is_some_and(|l| l.file.is_empty()) {
                e.loc = None;
            }
            e
        };
        let result = self.eval_lines(host, &mut r, &mut lex).map_err(strip);
        let finish = self.finish_pending(host, &mut r).map_err(strip);
        result?;
        finish?;
        if no_name && !r.conds.levels.is_empty() {
            return Err(Error::new(None, ErrorKind::MissingEndif));
        }
        if !r.conds.levels.is_empty() {
            // A file reports the line after its last; an $(eval) text its last line.
            let line = if !is_eval { lex.line() } else { first_line };
            return Err(Error::new(
                Some(Loc::new(r.file.clone(), line)),
                ErrorKind::MissingEndif,
            ));
        }
        Ok(())
    }

    fn finish_pending(&mut self, host: &mut dyn Host, r: &mut Reader) -> Result<(), Error> {
        if let Some(p) = r.pending.take() {
            self.record_rule(host, p, r.set_default)?;
        }
        Ok(())
    }

    fn eval_lines(
        &mut self,
        host: &mut dyn Host,
        r: &mut Reader,
        lex: &mut Lexer<'_>,
    ) -> Result<(), Error> {
        while let Some(ll) = lex.next() {
            self.sync_makefile_list();
            let raw = ll.text;
            // Text given to $(eval) keeps the line of the call throughout, as in make.
            let loc = Loc::new(
                r.file.clone(),
                if r.is_eval { r.first_line } else { ll.line },
            );
            let prefix = self.recipe_prefix();
            if raw.starts_with(prefix) {
                if r.no_targets {
                    continue;
                }
                if let Some(p) = r.pending.as_mut() {
                    if r.conds.ignoring() {
                        continue;
                    }
                    let text = collapse_in_references(&strip_continuation_prefix(
                        &raw[prefix.len_utf8()..],
                        prefix,
                    ));
                    let recipe = p.recipe.get_or_insert_with(|| Recipe {
                        loc: loc.clone(),
                        lines: Vec::new(),
                    });
                    // make numbers recipe lines from the recipe's start, one per command line (blank and
                    // comment lines between them and continuation lines are not counted).
                    let line = recipe.loc.line + recipe.lines.len() as u32;
                    recipe.lines.push(RecipeLine {
                        loc: Loc::new(loc.file.clone(), line),
                        text,
                    });
                    continue;
                }
            }
            let mut c = collapse_continuations(raw);
            if c.contains('#') {
                let mut owned = c.into_owned();
                remove_comments(&mut owned);
                c = std::borrow::Cow::Owned(owned);
            }

            if let Some(a) = parse_var_assignment(&c, false) {
                if r.conds.ignoring() {
                    if a.mods.define {
                        skip_define(lex, prefix);
                    }
                    continue;
                }
                self.finish_pending(host, r)?;
                r.no_targets = false;
                if a.mods.define {
                    let (op, extra) = define_op(a.name);
                    if extra {
                        host.stderr(&format!(
                            "{loc}: extraneous text after 'define' directive\n"
                        ));
                    }
                    let body = read_define(host, lex, prefix, &loc)?;
                    self.assign_line(host, &loc, &a, Some((body, op)))?;
                } else {
                    self.assign_line(host, &loc, &a, None)?;
                }
                continue;
            }
            let trimmed = c.trim_start_matches(ws);
            if trimmed.is_empty() {
                continue;
            }
            if let CondResult::Done = self.conditional_line(host, &mut r.conds, trimmed, &loc)? {
                continue;
            }
            if r.conds.ignoring() {
                continue;
            }
            let (word, rest) = split_word(trimmed);
            match word {
                "export" | "unexport" => {
                    self.finish_pending(host, r)?;
                    r.no_targets = false;
                    let exporting = word == "export";
                    if rest.is_empty() {
                        self.special.export_all = exporting;
                    } else {
                        let names = self.expand_at(host, rest, &Scope::GLOBAL, Some(&loc))?;
                        for n in crate::pattern::words(&names) {
                            let v = self.globals.entry(n.to_string()).or_insert_with(|| {
                                let mut v = Variable::new("", Flavor::Simple, Origin::File);
                                v.loc = Some(loc.clone());
                                v
                            });
                            v.export = if exporting { Export::Yes } else { Export::No };
                        }
                    }
                    continue;
                }
                "vpath" => {
                    self.finish_pending(host, r)?;
                    r.no_targets = false;
                    let text = self.expand_at(host, rest, &Scope::GLOBAL, Some(&loc))?;
                    let mut it = crate::pattern::words(&text);
                    match it.next() {
                        None => self.vpaths.clear(),
                        Some(pat) => {
                            let dirs_text: Vec<&str> = it.collect();
                            let dirs = super::split_path_list(&dirs_text.join(" "));
                            if dirs.is_empty() {
                                self.vpaths.retain(|v| v.pattern != pat);
                            } else {
                                self.vpaths.push(VpathDirective {
                                    pattern: pat.to_string(),
                                    dirs,
                                });
                            }
                        }
                    }
                    continue;
                }
                "include" | "-include" | "sinclude" => {
                    self.finish_pending(host, r)?;
                    r.no_targets = false;
                    let optional = word != "include";
                    let names = self.expand_at(host, rest, &Scope::GLOBAL, Some(&loc))?;
                    let mut files = Vec::new();
                    for w in crate::pattern::words(&names) {
                        let w = &*self.tilde(host, w);
                        if w.bytes().any(|b| matches!(b, b'*' | b'?' | b'[')) {
                            let m = crate::glob::glob(host, w);
                            if !m.is_empty() {
                                files.extend(m);
                                continue;
                            }
                        }
                        files.push(super::rules::strip_dot_slash(w).to_string());
                    }
                    for f in files {
                        self.read_makefile(
                            host,
                            &f,
                            Some(&loc),
                            optional,
                            !self.state.no_default_goal,
                        )?;
                    }
                    continue;
                }
                "load" | "-load" => {
                    self.finish_pending(host, r)?;
                    continue;
                }
                _ => {}
            }
            if raw.starts_with(prefix) {
                return Err(Error::new(Some(loc), ErrorKind::RecipeBeforeFirstTarget));
            }
            self.finish_pending(host, r)?;
            r.no_targets = false;
            match self.parse_rule_line(host, raw, &loc)? {
                RuleLine::Nothing | RuleLine::TargetVar => {}
                RuleLine::NoTargets => r.no_targets = true,
                RuleLine::Rule(p) => {
                    // After loading, rules can only come from $(eval) in a recipe; make refuses them.
                    if !self.state.loading {
                        return Err(Error::new(Some(loc), ErrorKind::PrereqsInRecipe));
                    }
                    r.pending = Some(p);
                }
            }
        }
        Ok(())
    }
}

fn is_directive(line: &str, word: &str) -> bool {
    let p = line.trim_start_matches(ws);
    p.starts_with(word)
        && p[word.len()..]
            .chars()
            .next()
            .is_none_or(|c| c == ' ' || c == '\t')
}

/// Skip the body of a `define` inside an ignored conditional branch.
fn skip_define(lex: &mut Lexer<'_>, prefix: char) {
    let mut depth = 1;
    for ll in lex.by_ref() {
        if ll.text.starts_with(prefix) {
            continue;
        }
        let c = collapse_continuations(ll.text);
        if is_directive(&c, "define") {
            depth += 1;
        } else if is_directive(&c, "endef") {
            depth -= 1;
            if depth == 0 {
                return;
            }
        }
    }
}

/// Read a `define` body up to its matching `endef`.
fn read_define(
    host: &mut dyn Host,
    lex: &mut Lexer<'_>,
    prefix: char,
    start: &Loc,
) -> Result<String, Error> {
    let mut depth = 1;
    let mut body = String::new();
    let mut first = true;
    for ll in lex.by_ref() {
        let line = collapse_continuations(ll.text);
        if !line.starts_with(prefix) {
            if is_directive(&line, "define") {
                depth += 1;
            } else if is_directive(&line, "endef") {
                let p = line.trim_start_matches(ws);
                let mut after = p[5..].to_string();
                remove_comments(&mut after);
                if !after.trim_matches(ws).is_empty() {
                    host.stderr(&format!(
                        "{}:{}: extraneous text after 'endef' directive\n",
                        start.file, ll.line
                    ));
                }
                depth -= 1;
                if depth == 0 {
                    return Ok(body);
                }
            }
        }
        if !first {
            body.push('\n');
        }
        first = false;
        body.push_str(&line);
    }
    Err(Error::new(Some(start.clone()), ErrorKind::MissingEndef))
}
