//! Starting a job: expanding a target's recipe with its automatic and target-specific variables,
//! splitting it into commands with make's `@ - +` flags, and the `--trace` line.

use crate::build::events::Event;
use crate::build::file::FileId;
use crate::build::job::{Job, JobLine};
use crate::build::plan::Plan;
use crate::db::Scope;
use crate::host::Host;

/// Splits the leading `@ - +` flags (and blanks, and newlines when `newlines`) off a recipe
/// line: the rest and (silent, ignore, recursive).
fn split_prefix(text: &str, newlines: bool) -> (&str, bool, bool, bool) {
    let mut silent = false;
    let mut ignore = false;
    let mut recurse = false;
    for (i, c) in text.char_indices() {
        match c {
            '@' => silent = true,
            '-' => ignore = true,
            '+' => recurse = true,
            ' ' | '\t' => {}
            '\n' if newlines => {}
            _ => return (&text[i..], silent, ignore, recurse),
        }
    }
    ("", silent, ignore, recurse)
}

/// Strips the leading `@ - +` and blanks of an expanded command, returning the flags found.
fn strip_prefix(cmd: &str) -> (&str, bool, bool, bool) {
    split_prefix(cmd, true)
}

/// The `@`, `-`, `+` prefix flags of an unexpanded recipe line (silent, ignore, recursive),
/// with `$(MAKE)`/`${MAKE}` counting as `+`.
pub(crate) fn line_flags(text: &str) -> (bool, bool, bool) {
    let (rest, silent, ignore, recurse) = split_prefix(text, false);
    (silent, ignore, recurse || rest.contains("$(MAKE)") || rest.contains("${MAKE}"))
}

/// Splits an expanded recipe line at newlines that are not escaped by a backslash.
fn split_commands(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' && (i == 0 || bytes[i - 1] != b'\\') {
            out.push(&text[start..i]);
            start = i + 1;
        }
    }
    out.push(&text[start..]);
    out
}

impl Plan {
    /// Expands the recipe of `f` into a job; `None` when the expansion failed (the plan dies)
    /// or produced nothing to run (the file is finished at once).
    pub(crate) fn start_job(&mut self, host: &mut dyn Host, f: FileId) -> Option<Job> {
        let cmds = self.files.get(f).cmds.clone()?;
        let names = self.scope_names(f);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let auto = self.auto_vars(f);
        let scope = Scope {
            targets: &refs,
            auto: Some(&auto),
        };
        let target_name = self.files.get(f).name.clone();
        let hname = self.files.get(f).hname.clone();
        let sp = &self.db.special;
        let run_silent = self.opts.silent || sp.silent_all;
        let target_silent = run_silent || sp.silent.contains(&hname);
        let target_ignore = self.opts.ignore_errors || sp.ignore_all || sp.ignore.contains(&hname);
        let oneshell = sp.oneshell;
        let dry = self.opts.just_print && !self.opts.rebuilding_makefiles;
        let skip_plain = (self.opts.touch || self.opts.question) && !self.opts.rebuilding_makefiles;
        let trace = self.opts.trace;

        let mut lines = Vec::new();
        if oneshell {
            let shell_now = self.db.expand(host, "$(SHELL)", &scope).unwrap_or_default();
            let base = shell_now.rsplit('/').next().unwrap_or("");
            let bourne = matches!(
                base,
                "sh" | "bash" | "dash" | "ksh" | "rksh" | "zsh" | "ash"
            );
            let mut joined = String::new();
            let (mut silent, mut ignore, mut recurse) = (false, false, false);
            for (i, l) in cmds.recipe.lines.iter().enumerate() {
                // One command: its flags are the first line's, plus `$(MAKE)` anywhere.
                let (s, ig, r) = line_flags(&l.text);
                if i == 0 {
                    silent = s;
                    ignore = ig;
                    recurse = r;
                } else if l.text.contains("$(MAKE)") || l.text.contains("${MAKE}") {
                    recurse = true;
                }
                let expanded = match self.db.expand_at(host, &l.text, &scope, Some(&l.loc)) {
                    Ok(e) => e,
                    Err(e) => {
                        self.fatal_error(e);
                        return None;
                    }
                };
                // The first line loses its prefix characters; later lines too under a
                // Bourne-compatible shell, but are kept verbatim for any other interpreter.
                let body = if i == 0 || bourne {
                    strip_prefix(&expanded).0
                } else {
                    expanded.as_str()
                };
                if i > 0 {
                    joined.push('\n');
                }
                joined.push_str(body);
            }
            let loc = cmds.recipe.lines.first().map(|l| l.loc.clone());
            if !joined.is_empty() && (!skip_plain || recurse) {
                lines.push(JobLine {
                    echo: dry || trace || !(silent || target_silent),
                    execute: !(dry || skip_plain) || recurse,
                    ignore_errors: ignore || target_ignore,
                    recursive: recurse,
                    loc,
                    command: joined,
                });
            }
        } else {
            for l in &cmds.recipe.lines {
                let (s0, i0, r0) = line_flags(&l.text);
                let expanded = match self.db.expand_at(host, &l.text, &scope, Some(&l.loc)) {
                    Ok(e) => e,
                    Err(e) => {
                        self.fatal_error(e);
                        return None;
                    }
                };
                for piece in split_commands(&expanded) {
                    let (body, s1, i1, r1) = strip_prefix(piece);
                    if body.trim().is_empty() {
                        continue;
                    }
                    let silent = s0 || s1;
                    let recurse = r0 || r1;
                    if skip_plain && !recurse {
                        continue;
                    }
                    lines.push(JobLine {
                        command: body.to_string(),
                        echo: dry || trace || !(silent || target_silent),
                        execute: !dry || recurse,
                        ignore_errors: i0 || i1 || target_ignore,
                        recursive: recurse,
                        loc: Some(l.loc.clone()),
                    });
                }
            }
        }
        let env = match self.db.recipe_env(host, &scope) {
            Ok(e) => e,
            Err(e) => {
                self.fatal_error(e);
                return None;
            }
        };
        let shell = self
            .db
            .expand(host, "$(SHELL)", &scope)
            .unwrap_or_else(|_| "/bin/sh".into());
        let mut shell_flags = self
            .db
            .expand(host, "$(.SHELLFLAGS)", &scope)
            .unwrap_or_else(|_| "-c".into());
        if self.db.special.posix && shell_flags == "-c" {
            // .POSIX: the shell stops at the first failing command.
            shell_flags = "-ec".into();
        }
        if trace {
            let loc = cmds.recipe.lines.first().map_or(&cmds.loc, |l| &l.loc);
            let at = if loc.line > 0 {
                format!("{}:{}", loc.file, loc.line)
            } else {
                "<builtin>".into()
            };
            let why = if auto.newer.is_empty() {
                format!("{at}: target '{target_name}' does not exist")
            } else {
                format!(
                    "{at}: update target '{target_name}' due to: {}",
                    auto.newer.join(" ")
                )
            };
            self.events.push(Event::Stdout(why));
        }
        if !lines.is_empty() {
            self.files.get_mut(f).ran_commands = true;
        }
        let id = self.alloc_job_id();
        self.running.insert(id, f);
        self.files.get_mut(f).running_job = true;
        Some(Job {
            id,
            target: target_name,
            lines,
            env,
            shell,
            shell_flags,
            oneshell,
            silent: run_silent,
        })
    }
}
