//! Built-in functions: recognising `$(name args)`, splitting arguments exactly as make does, and
//! dispatching to the text, file-name and control functions.

mod control;
mod file;
mod text;

use crate::db::Database;
use crate::error::{Error, ErrorKind};
use crate::expand::Ctx;
use crate::host::Host;
use crate::pattern::trim_space as strip_ws;

/// A function's name, argument counts (max 0 = unlimited) and whether its arguments are expanded first.
struct Func {
    name: &'static str,
    min: usize,
    max: usize,
    expand: bool,
}

const FUNCS: &[Func] = &[
    Func {
        name: "abspath",
        min: 0,
        max: 1,
        expand: true,
    },
    Func {
        name: "addprefix",
        min: 2,
        max: 2,
        expand: true,
    },
    Func {
        name: "addsuffix",
        min: 2,
        max: 2,
        expand: true,
    },
    Func {
        name: "and",
        min: 1,
        max: 0,
        expand: false,
    },
    Func {
        name: "basename",
        min: 0,
        max: 1,
        expand: true,
    },
    Func {
        name: "call",
        min: 1,
        max: 0,
        expand: true,
    },
    Func {
        name: "dir",
        min: 0,
        max: 1,
        expand: true,
    },
    Func {
        name: "error",
        min: 0,
        max: 1,
        expand: true,
    },
    Func {
        name: "eval",
        min: 0,
        max: 1,
        expand: true,
    },
    Func {
        name: "file",
        min: 1,
        max: 2,
        expand: true,
    },
    Func {
        name: "filter",
        min: 2,
        max: 2,
        expand: true,
    },
    Func {
        name: "filter-out",
        min: 2,
        max: 2,
        expand: true,
    },
    Func {
        name: "findstring",
        min: 2,
        max: 2,
        expand: true,
    },
    Func {
        name: "firstword",
        min: 0,
        max: 1,
        expand: true,
    },
    Func {
        name: "flavor",
        min: 0,
        max: 1,
        expand: true,
    },
    Func {
        name: "foreach",
        min: 3,
        max: 3,
        expand: false,
    },
    Func {
        name: "if",
        min: 2,
        max: 3,
        expand: false,
    },
    Func {
        name: "info",
        min: 0,
        max: 1,
        expand: true,
    },
    Func {
        name: "join",
        min: 2,
        max: 2,
        expand: true,
    },
    Func {
        name: "lastword",
        min: 0,
        max: 1,
        expand: true,
    },
    Func {
        name: "notdir",
        min: 0,
        max: 1,
        expand: true,
    },
    Func {
        name: "or",
        min: 1,
        max: 0,
        expand: false,
    },
    Func {
        name: "origin",
        min: 0,
        max: 1,
        expand: true,
    },
    Func {
        name: "patsubst",
        min: 3,
        max: 3,
        expand: true,
    },
    Func {
        name: "realpath",
        min: 0,
        max: 1,
        expand: true,
    },
    Func {
        name: "shell",
        min: 0,
        max: 1,
        expand: true,
    },
    Func {
        name: "sort",
        min: 0,
        max: 1,
        expand: true,
    },
    Func {
        name: "strip",
        min: 0,
        max: 1,
        expand: true,
    },
    Func {
        name: "subst",
        min: 3,
        max: 3,
        expand: true,
    },
    Func {
        name: "suffix",
        min: 0,
        max: 1,
        expand: true,
    },
    Func {
        name: "value",
        min: 0,
        max: 1,
        expand: true,
    },
    Func {
        name: "warning",
        min: 0,
        max: 1,
        expand: true,
    },
    Func {
        name: "wildcard",
        min: 0,
        max: 1,
        expand: true,
    },
    Func {
        name: "word",
        min: 2,
        max: 2,
        expand: true,
    },
    Func {
        name: "wordlist",
        min: 3,
        max: 3,
        expand: true,
    },
    Func {
        name: "words",
        min: 0,
        max: 1,
        expand: true,
    },
];

fn find_func(name: &str) -> Option<&'static Func> {
    FUNCS
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .map(|i| &FUNCS[i])
}

impl Database {
    /// `$(call builtin,args...)`: the function runs on the already expanded arguments, with make's
    /// argument-count check (functions that expand their own arguments expand them again).
    pub(crate) fn call_builtin(
        &mut self,
        host: &mut dyn Host,
        name: &str,
        args: &[String],
        ctx: &Ctx<'_, '_>,
        out: &mut String,
    ) -> Result<(), Error> {
        let Some(func) = find_func(name) else {
            return Ok(());
        };
        if args.len() < func.min {
            return Err(ctx.var_err(ErrorKind::InsufficientArgs {
                name: func.name.to_string(),
                got: args.len(),
            }));
        }
        if args.is_empty() {
            return Ok(());
        }
        if func.expand {
            if func.name == "call" {
                return self.func_call(host, args, ctx, out);
            }
            return self.call_expanded(host, func.name, args, ctx, out);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.call_lazy(host, func.name, &refs, ctx, out)
    }
}

/// Whether `name` is a built-in function (for `$(call builtin,...)` and `$(flavor)`).
pub(crate) fn is_builtin(name: &str) -> bool {
    find_func(name).is_some()
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

impl Database {
    /// If `text[beg..]` starts a built-in function call, run it and return the index after the call.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn try_function(
        &mut self,
        host: &mut dyn Host,
        text: &str,
        beg: usize,
        open: u8,
        close: u8,
        ctx: &Ctx<'_, '_>,
        out: &mut String,
    ) -> Result<Option<usize>, Error> {
        let b = text.as_bytes();
        let mut e = beg;
        while e < b.len() && is_name_char(b[e]) {
            e += 1;
        }
        if e == beg || (e < b.len() && !crate::pattern::is_space(b[e])) {
            return Ok(None);
        }
        let Some(func) = find_func(&text[beg..e]) else {
            return Ok(None);
        };
        let mut p = e;
        while p < b.len() && crate::pattern::is_space(b[p]) {
            p += 1;
        }
        let args_beg = p;
        // Find the end, counting nested parens of our kind.
        let mut count: i32 = 0;
        let mut end = args_beg;
        while end < b.len() {
            let c = b[end];
            if c == open {
                count += 1;
            } else if c == close {
                count -= 1;
                if count < 0 {
                    break;
                }
            }
            end += 1;
        }
        if count >= 0 {
            return Err(ctx.var_err(ErrorKind::UnterminatedCall {
                name: func.name.to_string(),
                close: close as char,
            }));
        }
        // Split into arguments.
        let mut args: Vec<&str> = Vec::new();
        let mut p = args_beg;
        loop {
            let next = if func.max != 0 && args.len() + 1 == func.max {
                None
            } else {
                next_comma(b, p, end, open, close)
            };
            match next {
                Some(n) => {
                    args.push(&text[p..n]);
                    p = n + 1;
                }
                None => {
                    args.push(&text[p..end]);
                    break;
                }
            }
        }
        if args.len() < func.min {
            return Err(ctx.var_err(ErrorKind::InsufficientArgs {
                name: func.name.to_string(),
                got: args.len(),
            }));
        }
        if func.expand {
            let mut ex: Vec<String> = Vec::with_capacity(args.len());
            for a in &args {
                let mut s = String::new();
                self.expand_into(host, a, ctx, &mut s)?;
                ex.push(s);
            }
            // `call` goes straight to its function: it is the usual way to recurse, and skipping the
            // big dispatch frame lets recursion go deeper on the same stack.
            if func.name == "call" {
                self.func_call(host, &ex, ctx, out)?;
            } else {
                self.call_expanded(host, func.name, &ex, ctx, out)?;
            }
        } else {
            self.call_lazy(host, func.name, &args, ctx, out)?;
        }
        Ok(Some(end + 1))
    }

    /// Run a function whose arguments are already expanded.
    pub(crate) fn call_expanded(
        &mut self,
        host: &mut dyn Host,
        name: &str,
        args: &[String],
        ctx: &Ctx<'_, '_>,
        out: &mut String,
    ) -> Result<(), Error> {
        let a = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
        match name {
            "subst" => text::subst(a(0), a(1), a(2), out),
            "patsubst" => crate::pattern::patsubst(a(0), a(1), a(2), out),
            "strip" => text::strip(a(0), out),
            "findstring" if a(1).contains(a(0)) => out.push_str(a(0)),
            "findstring" => {}
            "filter" => text::filter(a(0), a(1), true, out),
            "filter-out" => text::filter(a(0), a(1), false, out),
            "sort" => text::sort(a(0), out),
            "word" => text::word(a(0), a(1), ctx, out)?,
            "wordlist" => text::wordlist(a(0), a(1), a(2), ctx, out)?,
            "words" => out.push_str(&crate::pattern::words(a(0)).count().to_string()),
            "firstword" => out.push_str(crate::pattern::words(a(0)).next().unwrap_or("")),
            "lastword" => out.push_str(crate::pattern::words(a(0)).last().unwrap_or("")),
            "join" => text::join(a(0), a(1), out),
            "addprefix" => text::add_affix(a(0), a(1), true, out),
            "addsuffix" => text::add_affix(a(0), a(1), false, out),
            "dir" => file::dir(a(0), out),
            "notdir" => file::notdir(a(0), out),
            "suffix" => file::suffix(a(0), out),
            "basename" => file::basename(a(0), out),
            "abspath" => file::abspath(&host.cwd(), a(0), out),
            "realpath" => file::realpath(host, a(0), out),
            "wildcard" => {
                // Names are split as file names are: `has\ space` is one name.
                let words = crate::lexer::split_file_words(a(0));
                let mut first = true;
                for w in &words {
                    let w = self.tilde(host, w);
                    for m in crate::glob::glob(host, &w) {
                        if !first {
                            out.push(' ');
                        }
                        first = false;
                        out.push_str(&m);
                    }
                }
            }
            "info" => {
                host.stdout(&format!("{}\n", a(0)));
            }
            "warning" => {
                let msg = match ctx.loc {
                    Some(l) => format!("{l}: {}\n", a(0)),
                    None => format!("{}\n", a(0)),
                };
                host.stderr(&msg);
            }
            "error" => return Err(ctx.err(ErrorKind::User(a(0).to_string()))),
            "origin" => self.func_origin(a(0), ctx, out),
            "flavor" => self.func_flavor(a(0), ctx, out),
            "value" => {
                if let Some((v, _)) = self.lookup_var(a(0), ctx.scope) {
                    out.push_str(&v.value);
                }
            }
            "eval" => self.func_eval(host, a(0), ctx)?,
            "shell" => self.func_shell(host, a(0), ctx, out)?,
            "file" => self.func_file(host, args, ctx, out)?,
            "call" => self.func_call(host, args, ctx, out)?,
            _ => {}
        }
        Ok(())
    }

    /// Run a function that expands its own arguments (`if`, `and`, `or`, `foreach`).
    fn call_lazy(
        &mut self,
        host: &mut dyn Host,
        name: &str,
        args: &[&str],
        ctx: &Ctx<'_, '_>,
        out: &mut String,
    ) -> Result<(), Error> {
        match name {
            "if" => {
                // make strips the condition's text before expanding it, and tests the expansion as is.
                let cond = strip_ws(args.first().copied().unwrap_or(""));
                let mut c = String::new();
                self.expand_into(host, cond, ctx, &mut c)?;
                if !c.is_empty() {
                    self.expand_into(host, args.get(1).copied().unwrap_or(""), ctx, out)?;
                } else if let Some(e) = args.get(2) {
                    self.expand_into(host, e, ctx, out)?;
                }
            }
            // Like `if`: each argument's text is stripped, then expanded; a non-empty expansion counts
            // as true and is what the function returns, unstripped.
            "or" => {
                for a in args {
                    let mut c = String::new();
                    self.expand_into(host, strip_ws(a), ctx, &mut c)?;
                    if !c.is_empty() {
                        out.push_str(&c);
                        break;
                    }
                }
            }
            "and" => {
                let mut last = String::new();
                for a in args {
                    let mut c = String::new();
                    self.expand_into(host, strip_ws(a), ctx, &mut c)?;
                    if c.is_empty() {
                        return Ok(());
                    }
                    last = c;
                }
                out.push_str(&last);
            }
            "foreach" if args.len() >= 3 => {
                self.func_foreach(host, args[0], args[1], args[2], ctx, out)?
            }
            _ => {}
        }
        Ok(())
    }
}

/// The next top-level comma in `b[p..end]`, counting parens of the call's own kind only (as make does).
fn next_comma(b: &[u8], mut p: usize, end: usize, open: u8, close: u8) -> Option<usize> {
    let mut count: i32 = 0;
    while p < end {
        let c = b[p];
        if c == open {
            count += 1;
        } else if c == close {
            count -= 1;
            if count < 0 {
                return None;
            }
        } else if c == b',' && count == 0 {
            return Some(p);
        }
        p += 1;
    }
    None
}
