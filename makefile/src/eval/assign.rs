//! Variable assignments: recognising them (make's `parse_var_assignment`), and defining variables with
//! make's rules for `= := ::= += ?= !=`, origins, `define`, `undefine` and target-specific contexts.

use crate::db::{Database, Scope};
use crate::error::{Error, ErrorKind};
use crate::expand::Ctx;
use crate::host::Host;
use crate::loc::Loc;
use crate::pattern::trim_space_start as skip_ws;
use crate::vars::{AssignOp, Export, Flavor, Origin, VarSet, Variable};
use std::sync::Arc;

/// The modifiers before an assignment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Modifiers {
    pub export: bool,
    pub unexport: bool,
    pub override_: bool,
    pub private: bool,
    pub define: bool,
    pub undefine: bool,
}

impl Modifiers {
    /// Apply `export`, `unexport` and `private` to the variable just assigned.
    fn mark(&self, v: &mut Variable) {
        if self.export {
            v.export = Export::Yes;
        }
        if self.unexport {
            v.export = Export::No;
        }
        if self.private {
            v.private = true;
        }
    }
}

/// A target- or pattern-specific variable gives way to a command-line (or `-e` environment) value
/// of the same name unless it was set with `override`, as in make.
fn yield_to_command_line(v: &mut Variable, global: Option<&Variable>) {
    let Some(g) =
        global.filter(|g| matches!(g.origin, Origin::CommandLine | Origin::EnvironmentOverride))
    else {
        return;
    };
    if v.origin != Origin::Override {
        v.value = g.value.clone();
        v.flavor = g.flavor;
        v.origin = g.origin;
        v.append = false;
    }
}

/// A recognised assignment: modifiers, and for plain assignments the name text, operator and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Assignment<'a> {
    pub mods: Modifiers,
    /// For define/undefine: the rest of the line. Otherwise the unexpanded name.
    pub name: &'a str,
    pub op: Option<AssignOp>,
    pub value: &'a str,
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// make's `parse_variable_definition`: `(name, op, value)` if `p` is an assignment.
pub(crate) fn parse_assignment_text(p: &str) -> Option<(&str, AssignOp, &str)> {
    let p = skip_ws(p);
    let b = p.as_bytes();
    let mut i = 0;
    let mut wspace = false;
    let mut name_end: Option<usize> = None;
    loop {
        if i >= b.len() {
            return None;
        }
        let c = b[i];
        i += 1;
        if c == b'#' {
            return None;
        }
        if c == b'$' {
            if i >= b.len() {
                return None;
            }
            let o = b[i];
            i += 1;
            let close = match o {
                b'(' => b')',
                b'{' => b'}',
                _ => continue,
            };
            let mut count = 1;
            while i < b.len() {
                if b[i] == close {
                    count -= 1;
                    if count == 0 {
                        i += 1;
                        break;
                    }
                }
                if b[i] == o {
                    count += 1;
                }
                i += 1;
            }
            continue;
        }
        if is_blank(c) {
            wspace = true;
            name_end = Some(i - 1);
            while i < b.len() && crate::pattern::is_space(b[i]) {
                i += 1;
            }
            continue;
        }
        if c == b'=' {
            let e = if wspace {
                name_end.unwrap_or(i - 1)
            } else {
                i - 1
            };
            return Some((&p[..e], AssignOp::Recursive, skip_ws(&p[i..])));
        }
        if i < b.len() && b[i] == b'=' {
            let op = match c {
                b':' => AssignOp::Simple,
                b'+' => AssignOp::Append,
                b'?' => AssignOp::Conditional,
                b'!' => AssignOp::Shell,
                _ => {
                    if wspace {
                        return None;
                    }
                    continue;
                }
            };
            let e = if wspace {
                name_end.unwrap_or(i - 1)
            } else {
                i - 1
            };
            return Some((&p[..e], op, skip_ws(&p[i + 1..])));
        }
        if c == b':' {
            if i + 1 < b.len() && b[i] == b':' && b[i + 1] == b'=' {
                let e = if wspace {
                    name_end.unwrap_or(i - 1)
                } else {
                    i - 1
                };
                return Some((&p[..e], AssignOp::Simple, skip_ws(&p[i + 2..])));
            }
            return None;
        }
        if wspace {
            return None;
        }
    }
}

fn first_word(s: &str) -> (&str, &str) {
    let end = s.find(crate::pattern::is_space_char).unwrap_or(s.len());
    (&s[..end], skip_ws(&s[end..]))
}

/// make's `parse_var_assignment`: modifiers then an assignment, `define` or `undefine`.
pub(crate) fn parse_var_assignment(line: &str, _target_var: bool) -> Option<Assignment<'_>> {
    let mut p = skip_ws(line);
    if p.is_empty() {
        return None;
    }
    let mut mods = Modifiers::default();
    loop {
        if let Some((name, op, value)) = parse_assignment_text(p) {
            return Some(Assignment {
                mods,
                name,
                op: Some(op),
                value,
            });
        }
        let (w, rest) = first_word(p);
        match w {
            "export" => mods.export = true,
            "unexport" => mods.unexport = true,
            "override" => mods.override_ = true,
            "private" => mods.private = true,
            "define" => {
                mods.define = true;
                return Some(Assignment {
                    mods,
                    name: rest,
                    op: None,
                    value: "",
                });
            }
            "undefine" => {
                mods.undefine = true;
                return Some(Assignment {
                    mods,
                    name: rest,
                    op: None,
                    value: "",
                });
            }
            _ => return None,
        }
        p = rest;
        if p.is_empty() {
            return None;
        }
    }
}

/// Which set a definition goes to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    Global,
    /// A target's own set (target-specific assignment).
    File(&'a str),
}

impl Database {
    /// make's `do_variable_definition`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn define_var(
        &mut self,
        host: &mut dyn Host,
        loc: Option<&Loc>,
        name: &str,
        value: &str,
        op: AssignOp,
        origin: Origin,
        target: Target<'_>,
    ) -> Result<(), Error> {
        let targets_buf;
        let scope = match target {
            Target::Global => Scope::GLOBAL,
            Target::File(t) => {
                targets_buf = [t];
                Scope {
                    targets: &targets_buf,
                    auto: None,
                }
            }
        };
        let ctx = Ctx {
            scope: &scope,
            loc,
            var_loc: None,
        };
        let mut append_flag = false;
        let (new_value, flavor): (String, Flavor) = match op {
            AssignOp::Simple => {
                let mut s = String::new();
                self.expand_into(host, value, &ctx, &mut s)?;
                (s, Flavor::Simple)
            }
            AssignOp::Shell => {
                let mut cmd = String::new();
                self.expand_into(host, value, &ctx, &mut cmd)?;
                (self.run_shell(host, &cmd, false, &ctx)?, Flavor::Recursive)
            }
            AssignOp::Conditional => {
                if self.lookup_var(name, &scope).is_some() {
                    return Ok(());
                }
                (value.to_string(), Flavor::Recursive)
            }
            AssignOp::Recursive => (value.to_string(), Flavor::Recursive),
            AssignOp::Append => {
                let old = match target {
                    Target::File(t) => {
                        append_flag = true;
                        let v = self.target_vars.get(t).and_then(|s| s.get(name)).cloned();
                        if v.as_ref().is_some_and(|v| !v.append) {
                            append_flag = false;
                        }
                        v
                    }
                    Target::Global => self.lookup_var(name, &scope).map(|(v, _)| v),
                };
                match old {
                    None => (value.to_string(), Flavor::Recursive),
                    Some(old) => {
                        let (val, fl) = match old.flavor {
                            Flavor::Recursive => (value.to_string(), Flavor::Recursive),
                            Flavor::Simple => {
                                let mut s = String::new();
                                self.expand_into(host, value, &ctx, &mut s)?;
                                (s, Flavor::Simple)
                            }
                        };
                        let joined = if old.value.is_empty() {
                            val
                        } else if val.is_empty() {
                            old.value.to_string()
                        } else {
                            format!("{} {}", old.value, val)
                        };
                        (joined, fl)
                    }
                }
            }
        };
        let set: &mut VarSet = match target {
            Target::Global => &mut self.globals,
            Target::File(t) => self.target_vars.entry(t.to_string()).or_default(),
        };
        let env_overrides = self.state.env_overrides;
        match set.get_mut(name) {
            Some(v) => {
                if env_overrides && v.origin == Origin::Environment {
                    v.origin = Origin::EnvironmentOverride;
                }
                if origin >= v.origin {
                    v.value = Arc::from(new_value.as_str());
                    v.flavor = flavor;
                    v.origin = origin;
                    v.loc = loc.cloned();
                    v.append = append_flag;
                }
            }
            None => {
                let mut v = Variable::new(new_value.as_str(), flavor, origin);
                v.loc = loc.cloned();
                v.append = append_flag;
                set.insert(name.to_string(), v);
            }
        }
        if name == ".RECIPEPREFIX" || name == "SUFFIXES" {
            // Nothing cached: the reader looks the prefix up on every line.
        }
        Ok(())
    }

    /// A command-line assignment (`VAR=value`).
    pub(crate) fn define_cmdline(&mut self, host: &mut dyn Host, text: &str) -> Result<(), Error> {
        if let Some(name) = self.define_cmdline_unrecorded(host, text)? {
            self.state.cmdline.push(name);
        }
        Ok(())
    }

    /// Define a command-line variable without listing it among the command line's (a `VAR=value`
    /// word a makefile put into `MAKEFLAGS`: make does not pass it on). Returns its name.
    pub(crate) fn define_cmdline_unrecorded(
        &mut self,
        host: &mut dyn Host,
        text: &str,
    ) -> Result<Option<String>, Error> {
        let Some((name, op, value)) = parse_assignment_text(text) else {
            return Ok(None);
        };
        let name = self.expand(host, name, &Scope::GLOBAL)?;
        let name = name.trim().to_string();
        if name.is_empty() {
            return Err(Error::new(None, ErrorKind::EmptyVariableName));
        }
        self.define_var(
            host,
            None,
            &name,
            value,
            op,
            Origin::CommandLine,
            Target::Global,
        )?;
        Ok(Some(name))
    }

    /// Apply a plain assignment line at global level (or `undefine`), with its modifiers.
    pub(crate) fn assign_line(
        &mut self,
        host: &mut dyn Host,
        loc: &Loc,
        a: &Assignment<'_>,
        define_body: Option<(String, AssignOp)>,
    ) -> Result<(), Error> {
        let origin = if a.mods.override_ {
            Origin::Override
        } else {
            Origin::File
        };
        let ctx_scope = Scope::GLOBAL;
        let ctx = Ctx {
            scope: &ctx_scope,
            loc: Some(loc),
            var_loc: None,
        };
        if a.mods.undefine {
            let mut n = String::new();
            self.expand_into(host, a.name, &ctx, &mut n)?;
            let n = n.trim();
            if n.is_empty() {
                return Err(Error::new(Some(loc.clone()), ErrorKind::EmptyVariableName));
            }
            let env_overrides = self.state.env_overrides;
            if let Some(v) = self.globals.get_mut(n) {
                // As for an assignment, -e turns an environment variable into an override first.
                if env_overrides && v.origin == Origin::Environment {
                    v.origin = Origin::EnvironmentOverride;
                }
                if origin >= v.origin {
                    self.globals.remove(n);
                }
            }
            return Ok(());
        }
        let (name, value, op) = match &define_body {
            Some((body, op)) => {
                let mut n = String::new();
                let raw = match parse_assignment_text(a.name) {
                    Some((nm, _, _)) => nm,
                    None => a.name,
                };
                self.expand_into(host, raw, &ctx, &mut n)?;
                (n.trim().to_string(), body.as_str(), *op)
            }
            None => {
                let mut n = String::new();
                self.expand_into(host, a.name, &ctx, &mut n)?;
                let n = n.trim_matches(crate::pattern::is_space_char).to_string();
                (n, a.value, a.op.unwrap_or(AssignOp::Recursive))
            }
        };
        if name.is_empty() {
            return Err(Error::new(Some(loc.clone()), ErrorKind::EmptyVariableName));
        }
        self.define_var(host, Some(loc), &name, value, op, origin, Target::Global)?;
        if let Some(v) = self.globals.get_mut(&name) {
            a.mods.mark(v);
        }
        Ok(())
    }

    /// A target-specific (or pattern-specific) assignment for each of `targets`.
    pub(crate) fn target_assign(
        &mut self,
        host: &mut dyn Host,
        loc: &Loc,
        targets: &[String],
        a: &Assignment<'_>,
    ) -> Result<(), Error> {
        // `target: define V = x` is read as the assignment after `define`; without one it is
        // malformed, as is `undefine` (make's record_target_var).
        let redone;
        let a: &Assignment<'_> = if a.mods.define || a.mods.undefine {
            match parse_assignment_text(a.name) {
                Some((name, op, value)) if a.mods.define => {
                    let mut mods = a.mods;
                    mods.define = false;
                    redone = Assignment {
                        mods,
                        name,
                        op: Some(op),
                        value,
                    };
                    &redone
                }
                _ => return Err(Error::new(Some(loc.clone()), ErrorKind::MalformedTargetVar)),
            }
        } else {
            a
        };
        let origin = if a.mods.override_ {
            Origin::Override
        } else {
            Origin::File
        };
        let op = a.op.unwrap_or(AssignOp::Recursive);
        for t in targets {
            let scope = Scope::GLOBAL;
            let ctx = Ctx {
                scope: &scope,
                loc: Some(loc),
                var_loc: None,
            };
            let mut name = String::new();
            self.expand_into(host, a.name, &ctx, &mut name)?;
            let name = name.trim().to_string();
            if name.is_empty() {
                return Err(Error::new(Some(loc.clone()), ErrorKind::EmptyVariableName));
            }
            if crate::pattern::find_percent(t).1.is_some() {
                let value = match op {
                    AssignOp::Simple => {
                        let mut s = String::new();
                        self.expand_into(host, a.value, &ctx, &mut s)?;
                        s
                    }
                    AssignOp::Shell => {
                        let mut cmd = String::new();
                        self.expand_into(host, a.value, &ctx, &mut cmd)?;
                        self.run_shell(host, &cmd, false, &ctx)?
                    }
                    _ => a.value.to_string(),
                };
                let flavor = if op == AssignOp::Simple {
                    Flavor::Simple
                } else {
                    Flavor::Recursive
                };
                let mut var = Variable::new(value.as_str(), flavor, origin);
                var.loc = Some(loc.clone());
                a.mods.mark(&mut var);
                yield_to_command_line(&mut var, self.globals.get(&name));
                let pv = crate::vars::PatternVar {
                    pattern: t.clone(),
                    name,
                    op,
                    var,
                };
                // Keep the list ordered by pattern length, stable (make's shortest-stem order).
                let len = t.len();
                let pos = self
                    .pattern_vars
                    .iter()
                    .position(|p| p.pattern.len() > len)
                    .unwrap_or(self.pattern_vars.len());
                self.pattern_vars.insert(pos, pv);
                continue;
            }
            self.define_var(host, Some(loc), &name, a.value, op, origin, Target::File(t))?;
            let global = self.globals.get(&name).cloned();
            if let Some(v) = self
                .target_vars
                .get_mut(t.as_str())
                .and_then(|s| s.get_mut(&name))
            {
                a.mods.mark(v);
                yield_to_command_line(v, global.as_ref());
            }
        }
        Ok(())
    }
}

/// The operator and name text of a `define` line's rest (`NAME`, `NAME =`, `NAME :=` ...).
pub(crate) fn define_op(rest: &str) -> (AssignOp, bool) {
    match parse_assignment_text(rest) {
        Some((_, op, value)) => (op, !value.trim().is_empty()),
        None => (AssignOp::Recursive, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `parse_assignment_text` gives: (name, operator, value).
    type Parsed = Option<(&'static str, AssignOp, &'static str)>;

    #[test]
    fn recognises_assignments() {
        let cases: &[(&str, Parsed)] = &[
            ("A = b c ", Some(("A", AssignOp::Recursive, "b c "))),
            ("A:=b", Some(("A", AssignOp::Simple, "b"))),
            ("A ::= b", Some(("A", AssignOp::Simple, "b"))),
            ("A += b", Some(("A", AssignOp::Append, "b"))),
            (
                "$(x:a=b) ?= 1",
                Some(("$(x:a=b)", AssignOp::Conditional, "1")),
            ),
            ("A != echo", Some(("A", AssignOp::Shell, "echo"))),
            ("a: b", None),
            ("a b = c", None),
            ("a=b=c", Some(("a", AssignOp::Recursive, "b=c"))),
        ];
        for (text, want) in cases {
            assert_eq!(parse_assignment_text(text), *want, "{text}");
        }
    }

    #[test]
    fn modifiers() {
        let a = parse_var_assignment("export override X = 1", false).expect("assignment");
        assert!(a.mods.export && a.mods.override_);
        assert_eq!(a.name, "X");
        assert!(parse_var_assignment("export X", false).is_none());
        let d = parse_var_assignment("define X :=", false).expect("define");
        assert!(d.mods.define);
        assert_eq!(d.name, "X :=");
    }
}
