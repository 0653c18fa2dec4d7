//! Functions about variables and the outside world: origin, flavor, eval, shell, file, call, foreach.

use crate::db::Database;
use crate::error::{Error, ErrorKind};
use crate::expand::Ctx;
use crate::host::Host;
use crate::pattern::trim_space as trim;
use crate::vars::{Flavor, Origin, VarSet, Variable};
use std::sync::Arc;

/// The errno of reading a directory (Linux).
const EISDIR: i32 = 21;

impl Database {
    /// `$(origin name)`.
    pub(crate) fn func_origin(&self, name: &str, ctx: &Ctx<'_, '_>, out: &mut String) {
        match self.lookup_var(name, ctx.scope) {
            Some((v, _)) => out.push_str(v.origin.name()),
            None => out.push_str("undefined"),
        }
    }

    /// `$(flavor name)`.
    pub(crate) fn func_flavor(&self, name: &str, ctx: &Ctx<'_, '_>, out: &mut String) {
        match self.lookup_var(name, ctx.scope) {
            Some((v, _)) => out.push_str(v.flavor.name()),
            None => out.push_str("undefined"),
        }
    }

    /// `$(eval text)`: read `text` as makefile lines, reporting errors at the caller's location.
    pub(crate) fn func_eval(
        &mut self,
        host: &mut dyn Host,
        text: &str,
        ctx: &Ctx<'_, '_>,
    ) -> Result<(), Error> {
        let (file, line): (Arc<str>, u32) = match ctx.loc {
            Some(l) => (l.file.clone(), l.line),
            None => (Arc::from(""), 0),
        };
        let saved_locals = std::mem::take(&mut self.locals);
        let saved_expanding = std::mem::take(&mut self.expanding);
        // Arguments of an enclosing $(call) stay visible to the evaluated text, as in make.
        self.locals = saved_locals.clone();
        let r = self.eval_source(host, file, text, line, true);
        self.locals = saved_locals;
        self.expanding = saved_expanding;
        r
    }

    /// Run a shell command for `$(shell)` or `!=`: newlines folded to spaces, trailing ones removed,
    /// `.SHELLSTATUS` set. `$(shell)` drops every trailing newline (`trim_all`), `!=` only the last.
    pub(crate) fn run_shell(
        &mut self,
        host: &mut dyn Host,
        cmd: &str,
        trim_all: bool,
        ctx: &Ctx<'_, '_>,
    ) -> Result<String, Error> {
        let shell = self.value_of(host, "SHELL", ctx)?;
        let flags = self.value_of(host, ".SHELLFLAGS", ctx)?;
        // make 4.3 runs $(shell) with its own environment as it received it (exported makefile
        // variables are not added; that came with 4.4).
        let env = self.state.env.clone();
        // A SHELL with arguments (`/bin/sh -e`) runs its first word with the rest before .SHELLFLAGS.
        let mut words = crate::pattern::words(&shell);
        let program = words.next().unwrap_or("/bin/sh").to_string();
        let mut all_flags: Vec<&str> = words.collect();
        all_flags.extend(crate::pattern::words(&flags));
        let res = host.shell(cmd, &program, &all_flags.join(" "), &env);
        let s = fold_newlines(&res.stdout, trim_all);
        self.globals.insert(
            ".SHELLSTATUS".into(),
            Variable::new(res.status.to_string(), Flavor::Simple, Origin::Override),
        );
        Ok(s)
    }

    /// `$(shell cmd)`.
    pub(crate) fn func_shell(
        &mut self,
        host: &mut dyn Host,
        cmd: &str,
        ctx: &Ctx<'_, '_>,
        out: &mut String,
    ) -> Result<(), Error> {
        let s = self.run_shell(host, cmd, true, ctx)?;
        out.push_str(&s);
        Ok(())
    }

    /// `$(file op name[,text])`.
    pub(crate) fn func_file(
        &mut self,
        host: &mut dyn Host,
        args: &[String],
        ctx: &Ctx<'_, '_>,
        out: &mut String,
    ) -> Result<(), Error> {
        let spec = crate::pattern::trim_space_start(&args[0]);
        if let Some(r) = spec.strip_prefix('>') {
            let (append, r) = match r.strip_prefix('>') {
                Some(r2) => (true, r2),
                None => (false, r),
            };
            // make keeps trailing blanks in the name.
            let name = crate::pattern::trim_space_start(r);
            if name.is_empty() {
                return Err(ctx.err(ErrorKind::FileMissingName));
            }
            let mut text = String::new();
            if let Some(t) = args.get(1) {
                text.push_str(t);
                if !t.ends_with('\n') {
                    text.push('\n');
                }
            }
            if let Err(e) = host.write_file(name, &text, append) {
                return Err(ctx.err(ErrorKind::FileOpen {
                    path: name.to_string(),
                    reason: crate::eval::io_reason(&e),
                }));
            }
            return Ok(());
        }
        if let Some(r) = spec.strip_prefix('<') {
            let name = trim(r);
            if name.is_empty() {
                return Err(ctx.err(ErrorKind::FileMissingName));
            }
            if args.len() > 1 {
                return Err(ctx.err(ErrorKind::FileTooManyArgs));
            }
            match host.read_file(name) {
                Ok(mut t) => {
                    if t.ends_with('\n') {
                        t.pop();
                    }
                    out.push_str(&t);
                }
                // A missing file reads as nothing; text that is not UTF-8 is left out too.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData
                    ) => {}
                // make opens the file first, so a directory fails at the read.
                Err(e) if e.raw_os_error() == Some(EISDIR) => {
                    return Err(ctx.err(ErrorKind::FileRead {
                        path: name.to_string(),
                        reason: crate::eval::io_reason(&e),
                    }));
                }
                Err(e) => {
                    return Err(ctx.err(ErrorKind::FileOpen {
                        path: name.to_string(),
                        reason: crate::eval::io_reason(&e),
                    }));
                }
            }
            return Ok(());
        }
        Err(ctx.err(ErrorKind::InvalidFileOp(spec.to_string())))
    }

    /// `$(call name,args...)`.
    pub(crate) fn func_call(
        &mut self,
        host: &mut dyn Host,
        args: &[String],
        ctx: &Ctx<'_, '_>,
        out: &mut String,
    ) -> Result<(), Error> {
        let Some(first) = args.first() else {
            return Err(ctx.var_err(ErrorKind::InsufficientArgs {
                name: "call".into(),
                got: 0,
            }));
        };
        let fname = trim(first).to_string();
        if crate::functions::is_builtin(&fname) {
            return self.call_builtin(host, &fname, args.get(1..).unwrap_or(&[]), ctx, out);
        }
        match self.lookup_var(&fname, ctx.scope) {
            Some((v, _)) if !v.value.is_empty() => {}
            _ => return Ok(()),
        }
        let mut set = VarSet::default();
        for (i, a) in args.iter().enumerate() {
            let name = if i == 0 {
                "0".to_string()
            } else {
                i.to_string()
            };
            let val = if i == 0 { fname.as_str() } else { a.as_str() };
            set.insert(name, Variable::new(val, Flavor::Simple, Origin::Automatic));
        }
        let n = args.len();
        for i in n..self.call_args {
            set.insert(
                i.to_string(),
                Variable::new("", Flavor::Simple, Origin::Automatic),
            );
        }
        let saved = self.call_args;
        self.call_args = n.max(saved);
        self.locals.push(set);
        let r = self.reference(host, &fname, ctx, out);
        self.locals.pop();
        self.call_args = saved;
        r
    }

    /// `$(foreach var,list,text)`.
    pub(crate) fn func_foreach(
        &mut self,
        host: &mut dyn Host,
        var: &str,
        list: &str,
        body: &str,
        ctx: &Ctx<'_, '_>,
        out: &mut String,
    ) -> Result<(), Error> {
        let mut name = String::new();
        self.expand_into(host, var, ctx, &mut name)?;
        // make binds only the first word of the name (`$(foreach a b,…)` binds `a`).
        let name = crate::pattern::words(&name)
            .next()
            .unwrap_or("")
            .to_string();
        let mut items = String::new();
        self.expand_into(host, list, ctx, &mut items)?;
        let words: Vec<&str> = crate::pattern::words(&items).collect();
        if words.is_empty() {
            return Ok(());
        }
        self.locals.push(VarSet::default());
        let mut result = Ok(());
        for (i, w) in words.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            if let Some(top) = self.locals.last_mut() {
                top.insert(
                    name.clone(),
                    Variable::new(*w, Flavor::Simple, Origin::Automatic),
                );
            }
            if let Err(e) = self.expand_into(host, body, ctx, out) {
                result = Err(e);
                break;
            }
        }
        self.locals.pop();
        result
    }
}

/// make's `fold_newlines`: newlines (and CR-LF) become spaces; trailing ones are dropped (all of them
/// with `trim_all`, else only the last).
fn fold_newlines(text: &str, trim_all: bool) -> String {
    let b = text.as_bytes();
    let mut dst: Vec<u8> = Vec::with_capacity(b.len());
    let mut last_nonnl: isize = -1;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\r' && i + 1 < b.len() && b[i + 1] == b'\n' {
            i += 1;
            continue;
        }
        if b[i] == b'\n' {
            dst.push(b' ');
        } else {
            last_nonnl = dst.len() as isize;
            dst.push(b[i]);
        }
        i += 1;
    }
    if !trim_all && last_nonnl < dst.len() as isize - 2 {
        last_nonnl = dst.len() as isize - 2;
    }
    dst.truncate((last_nonnl + 1).max(0) as usize);
    String::from_utf8_lossy(&dst).into_owned()
}

#[cfg(test)]
mod tests {
    use super::fold_newlines;

    #[test]
    fn folding() {
        assert_eq!(fold_newlines("a\nb\n\n", true), "a b");
        assert_eq!(fold_newlines("a\nb\n\n", false), "a b ");
        assert_eq!(fold_newlines("a\r\nb\n", false), "a b");
        assert_eq!(fold_newlines("x", false), "x");
    }
}
