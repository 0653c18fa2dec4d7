//! Variable expansion: `$(...)`/`${...}`/`$x` references, substitution references, computed names,
//! and the variable lookup chain (call/foreach scopes, automatic variables, target-specific,
//! pattern-specific, global).

use crate::db::{Database, Scope};
use crate::error::{Error, ErrorKind};
use crate::host::Host;
use crate::loc::Loc;
use crate::pattern;
use crate::vars::{Flavor, Origin, Variable};

/// Where an expansion happens and where its errors are reported.
pub(crate) struct Ctx<'a, 'b> {
    pub scope: &'a Scope<'b>,
    /// The line being read, or the recipe line being expanded (`$(error)`, `$(warning)` report here).
    pub loc: Option<&'a Loc>,
    /// The definition of the innermost variable being expanded (make's `expanding_var`): syntax errors
    /// inside a variable's value are reported there.
    pub var_loc: Option<&'a Loc>,
}

impl Ctx<'_, '_> {
    /// An error at the reading location.
    pub(crate) fn err(&self, kind: ErrorKind) -> Error {
        Error::new(self.loc.cloned(), kind)
    }

    /// An error at the location of the variable being expanded (or the reading location).
    pub(crate) fn var_err(&self, kind: ErrorKind) -> Error {
        Error::new(self.var_loc.or(self.loc).cloned(), kind)
    }
}

/// One link of the lookup chain.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Link {
    Local(usize),
    Auto,
    Target(usize),
    Pattern(usize),
    Global,
}

/// How deeply expansions (variables, functions, `$(eval)`) may nest, at most.
const MAX_DEPTH: u32 = 1_000_000;

/// How much stack nested expansions may use before stopping with an error instead of overflowing:
/// deeply recursive makefiles (`$(call)` recursion over long lists) need a deep stack, so the loader is
/// meant to run on a thread with at least 8 MiB (the main thread's default on Linux).
const STACK_BUDGET: usize = 6 << 20;

const AUTO_NAMES: &[&str] = &["@", "%", "<", "?", "^", "+", "|", "*"];

impl Database {
    /// How many links the chain for `scope` has.
    fn chain_len(&self, scope: &Scope<'_>) -> usize {
        self.locals.len() + usize::from(scope.auto.is_some()) + 2 * scope.targets.len() + 1
    }

    /// The link at `pos` of the chain for `scope` (innermost first: call/foreach scopes, automatic
    /// variables, then per target its own and its pattern-specific variables, then the globals), with
    /// whether it is a parent's (private variables there are invisible).
    fn link_at(&self, scope: &Scope<'_>, pos: usize) -> (Link, bool) {
        let nl = self.locals.len();
        if pos < nl {
            return (Link::Local(nl - 1 - pos), false);
        }
        let mut p = pos - nl;
        if scope.auto.is_some() {
            if p == 0 {
                return (Link::Auto, false);
            }
            p -= 1;
        }
        let t = p / 2;
        if t < scope.targets.len() {
            let link = if p & 1 == 0 {
                Link::Target(t)
            } else {
                Link::Pattern(t)
            };
            return (link, t > 0);
        }
        (Link::Global, !scope.targets.is_empty())
    }

    fn in_link(&self, name: &str, link: Link, scope: &Scope<'_>) -> Option<Variable> {
        match link {
            Link::Local(i) => self.locals.get(i)?.get(name).cloned(),
            Link::Auto => {
                let a = scope.auto?;
                let val = match name {
                    "@" => a.target.clone(),
                    "%" => a.member.clone(),
                    "<" => a.first_prereq.clone(),
                    "?" => a.newer.join(" "),
                    "^" => a.all.join(" "),
                    "+" => a.all_dups.join(" "),
                    "|" => a.order_only.join(" "),
                    "*" => a.stem.clone(),
                    _ => return None,
                };
                Some(Variable::new(val, Flavor::Simple, Origin::Automatic))
            }
            Link::Target(i) => self
                .target_vars
                .get(*scope.targets.get(i)?)?
                .get(name)
                .cloned(),
            Link::Pattern(i) => self.pattern_var_for(name, scope.targets.get(i)?),
            Link::Global => self.globals.get(name).cloned(),
        }
    }

    /// The pattern-specific definition of `name` for `target`: every matching pattern assignment, in
    /// make's order (shorter patterns first), folded together as make builds a target's pattern set.
    pub(crate) fn pattern_var_for(&self, name: &str, target: &str) -> Option<Variable> {
        if self.pattern_vars.is_empty() {
            return None;
        }
        let mut cur: Option<Variable> = None;
        for p in self.pattern_vars.iter().filter(|p| p.name == name) {
            if !p.applies_to(target) {
                continue;
            }
            use crate::vars::AssignOp;
            match p.op {
                AssignOp::Simple | AssignOp::Recursive | AssignOp::Shell => {
                    if cur.as_ref().is_none_or(|c| p.var.origin >= c.origin) {
                        cur = Some(p.var.clone());
                    }
                }
                AssignOp::Conditional => {
                    if cur.is_none() && !self.globals.contains_key(name) {
                        cur = Some(p.var.clone());
                    }
                }
                AssignOp::Append => match &mut cur {
                    None => {
                        let mut v = p.var.clone();
                        v.append = true;
                        v.flavor = Flavor::Recursive;
                        cur = Some(v);
                    }
                    Some(c) => {
                        let joined = if c.value.is_empty() {
                            p.var.value.to_string()
                        } else {
                            format!("{} {}", c.value, p.var.value)
                        };
                        c.value = joined.into();
                    }
                },
            }
        }
        cur
    }

    /// Find `name` in `scope`: the variable and its position in the chain.
    pub(crate) fn lookup_var(&self, name: &str, scope: &Scope<'_>) -> Option<(Variable, usize)> {
        let quick = self.locals.is_empty() && scope.targets.is_empty() && scope.auto.is_none();
        if quick {
            return self.globals.get(name).map(|v| (v.clone(), 0));
        }
        let is_auto = AUTO_NAMES.contains(&name);
        for pos in 0..self.chain_len(scope) {
            let (link, parent) = self.link_at(scope, pos);
            if link == Link::Auto && !is_auto {
                continue;
            }
            if let Some(v) = self.in_link(name, link, scope) {
                if parent && v.private {
                    continue;
                }
                return Some((v, pos));
            }
        }
        None
    }

    /// make's `variable_append`: the value of an appending target-specific variable found at `pos`.
    fn append_value(
        &mut self,
        host: &mut dyn Host,
        name: &str,
        pos: usize,
        ctx: &Ctx<'_, '_>,
        out: &mut String,
    ) -> Result<(), Error> {
        // Collect the definitions from `pos` outwards, stopping at the first non-appending one.
        let mut defs: Vec<Variable> = Vec::new();
        let mut local = true;
        for i in pos..self.chain_len(ctx.scope) {
            let (link, parent) = self.link_at(ctx.scope, i);
            if parent {
                local = false;
            }
            if let Some(v) = self.in_link(name, link, ctx.scope) {
                if i != pos && !local && v.private {
                    continue;
                }
                let more = v.append;
                defs.push(v);
                if !more {
                    break;
                }
            }
        }
        let start = out.len();
        for v in defs.iter().rev() {
            if out.len() > start {
                out.push(' ');
            }
            match v.flavor {
                Flavor::Simple => out.push_str(&v.value),
                Flavor::Recursive => self.expand_into(host, &v.value, ctx, out)?,
            }
        }
        Ok(())
    }

    /// Expand a reference to the variable `name` into `out`.
    pub(crate) fn reference(
        &mut self,
        host: &mut dyn Host,
        name: &str,
        ctx: &Ctx<'_, '_>,
        out: &mut String,
    ) -> Result<(), Error> {
        if name == ".VARIABLES" {
            let names = crate::varorder::table_order(self.globals.iter().map(|(k, v)| {
                let rank = if v.loc.is_some() {
                    2
                } else if crate::builtin::is_builtin_variable(k) {
                    1
                } else {
                    0
                };
                (k.as_str(), rank)
            }));
            out.push_str(&names.join(" "));
            return Ok(());
        }
        let Some((v, pos)) = self.lookup_var(name, ctx.scope) else {
            if self.state.warn_undefined {
                self.warn_undefined(host, name, ctx);
            }
            return Ok(());
        };
        if v.value.is_empty() && !v.append {
            return Ok(());
        }
        match v.flavor {
            Flavor::Simple => out.push_str(&v.value),
            Flavor::Recursive => {
                if self.expanding.iter().any(|(n, p)| n == name && *p == pos) {
                    let loc = v.loc.clone().or_else(|| ctx.var_loc.or(ctx.loc).cloned());
                    return Err(Error::new(
                        loc,
                        ErrorKind::RecursiveVariable(name.to_string()),
                    ));
                }
                self.expanding.push((name.to_string(), pos));
                let loc = v.loc.clone();
                let ictx = Ctx {
                    scope: ctx.scope,
                    loc: ctx.loc,
                    var_loc: loc.as_ref().or(ctx.var_loc),
                };
                let r = if v.append {
                    self.append_value(host, name, pos, &ictx, out)
                } else {
                    self.expand_into(host, &v.value, &ictx, out)
                };
                self.expanding.pop();
                r?;
            }
        }
        Ok(())
    }

    /// make's `warn_undefined`.
    fn warn_undefined(&self, host: &mut dyn Host, name: &str, ctx: &Ctx<'_, '_>) {
        // Expansions without a location are the build half's own lookups (`$(VPATH)`, `$(SHELL)`), not
        // references written in a makefile; make does not warn about those.
        if let Some(l) = ctx.loc {
            host.stderr(&format!("{l}: warning: undefined variable '{name}'\n"));
        }
    }

    /// The full value of `name` in `scope`, expanded (what `$(name)` gives).
    pub(crate) fn value_of(
        &mut self,
        host: &mut dyn Host,
        name: &str,
        ctx: &Ctx<'_, '_>,
    ) -> Result<String, Error> {
        let mut s = String::new();
        self.reference(host, name, ctx, &mut s)?;
        Ok(s)
    }

    /// Expand `text` into `out`.
    pub(crate) fn expand_into(
        &mut self,
        host: &mut dyn Host,
        text: &str,
        ctx: &Ctx<'_, '_>,
        out: &mut String,
    ) -> Result<(), Error> {
        if !text.contains('$') {
            out.push_str(text);
            return Ok(());
        }
        // make would recurse until it crashes (e.g. `X = $(eval $(X))`); stop with an error instead.
        // The stack in use is measured from the outermost expansion's frame.
        let marker = 0u8;
        let here = std::ptr::addr_of!(marker) as usize;
        if self.depth == 0 {
            self.stack_base = here;
            self.sync_makefile_list();
        }
        if self.depth >= MAX_DEPTH || self.stack_base.abs_diff(here) > STACK_BUDGET {
            return Err(ctx.var_err(ErrorKind::Other("expansion nested too deeply".into())));
        }
        self.depth += 1;
        let r = self.expand_text(host, text, ctx, out);
        self.depth -= 1;
        r
    }

    fn expand_text(
        &mut self,
        host: &mut dyn Host,
        text: &str,
        ctx: &Ctx<'_, '_>,
        out: &mut String,
    ) -> Result<(), Error> {
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let Some(rel) = text[i..].find('$') else {
                out.push_str(&text[i..]);
                break;
            };
            let pos = i + rel;
            out.push_str(&text[i..pos]);
            if pos + 1 >= b.len() {
                // A `$` ending the text stays as it is.
                out.push('$');
                break;
            }
            let c = b[pos + 1];
            match c {
                b'$' => {
                    out.push('$');
                    i = pos + 2;
                }
                b'(' | b'{' => {
                    i = self.expand_paren(host, text, pos + 1, ctx, out)?;
                }
                _ => {
                    let ch_len = text[pos + 1..].chars().next().map_or(1, char::len_utf8);
                    let name = &text[pos + 1..pos + 1 + ch_len];
                    self.reference(host, name, ctx, out)?;
                    i = pos + 1 + ch_len;
                }
            }
        }
        Ok(())
    }

    /// Expand the reference whose opening paren is at `open_at`; returns the index after it.
    fn expand_paren(
        &mut self,
        host: &mut dyn Host,
        text: &str,
        open_at: usize,
        ctx: &Ctx<'_, '_>,
        out: &mut String,
    ) -> Result<usize, Error> {
        let b = text.as_bytes();
        let open = b[open_at];
        let close = if open == b'(' { b')' } else { b'}' };
        let beg = open_at + 1;
        if let Some(next) = self.try_function(host, text, beg, open, close, ctx, out)? {
            return Ok(next);
        }
        let Some(end_rel) = text[beg..].bytes().position(|c| c == close) else {
            return Err(ctx.var_err(ErrorKind::UnterminatedVariableRef));
        };
        let end = beg + end_rel;
        let mut next = end + 1;
        let owned;
        let mut name: &str = &text[beg..end];
        if name.contains('$') {
            let mut count: i32 = 0;
            let mut p = beg;
            while p < b.len() {
                if b[p] == open {
                    count += 1;
                } else if b[p] == close {
                    count -= 1;
                    if count < 0 {
                        break;
                    }
                }
                p += 1;
            }
            if count < 0 {
                let mut s = String::new();
                self.expand_into(host, &text[beg..p], ctx, &mut s)?;
                owned = s;
                name = &owned;
                next = p + 1;
            } else {
                // make's "$($(a)" case: the name runs to the first close and scanning stops.
                next = b.len();
            }
        }
        // A substitution reference $(VAR:from=to)?
        if let Some(colon) = name.find(':') {
            if let Some(eq_rel) = name[colon + 1..].find('=') {
                let var = &name[..colon];
                let from = &name[colon + 1..colon + 1 + eq_rel];
                let to = &name[colon + 2 + eq_rel..];
                let mut val = String::new();
                self.reference(host, var, ctx, &mut val)?;
                if !val.is_empty() {
                    pattern::subst_ref(from, to, &val, out);
                }
                return Ok(next);
            }
        }
        let name = name.to_string();
        self.reference(host, &name, ctx, out)?;
        Ok(next)
    }
}
