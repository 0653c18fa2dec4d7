//! Remaking one file: attaching an implicit rule's result, second expansion of prerequisites,
//! deciding between running a job, touching, or failing (make's remake_file), and recording a
//! finished file (make's notice_finished_file).

use crate::build::events::Event;
use crate::build::file::{CmdState, Cmds, Dep, FileId, Status, Time};
use crate::build::implicit::{Found, Search};
use crate::build::job::ExitKind;
use crate::build::plan::Plan;
use crate::build::start::line_flags;
use crate::db::{AutoVars, Scope};
use crate::host::Host;

impl Plan {
    pub(crate) fn try_implicit_rule(&mut self, host: &mut dyn Host, f: FileId) -> bool {
        let name = self.files.get(f).name.clone();
        let parents = self.scope_names(f).split_off(1);
        let (found, error) = {
            let mut s = Search {
                db: &mut self.db,
                host,
                files: &self.files,
                dirs: &mut self.dirs,
                vpath: &self.vpath,
                impossible: &mut self.impossible,
                in_use: &mut self.in_use,
                parents: &parents,
                error: None,
            };
            let found = s.find(&name, 0);
            (found, s.error)
        };
        if let Some(e) = error {
            self.fatal_error(e);
            return false;
        }
        match found {
            Some(found) => {
                self.attach(f, found, false);
                true
            }
            None => false,
        }
    }

    fn attach(&mut self, f: FileId, found: Found, intermediate: bool) {
        let (recipe, loc, targets, terminal) = {
            let r = &self.db.pattern_rules[found.rule];
            (
                r.recipe.clone(),
                r.loc.clone(),
                r.targets.clone(),
                r.terminal,
            )
        };
        let mut new_deps = Vec::new();
        for fd in found.deps {
            let has_inter = fd.intermediate.is_some();
            if let Some(inter) = fd.intermediate {
                let id = match self.files.lookup(&fd.name) {
                    Some(id) => {
                        self.files.get_mut(id).secondary = true;
                        id
                    }
                    None => self.files.enter(&fd.name),
                };
                self.attach(id, *inter, true);
            }
            let file = self.files.enter(&fd.name);
            if !has_inter && terminal {
                self.files.get_mut(file).tried_implicit = true;
            }
            new_deps.push(Dep {
                file,
                order_only: fd.order_only,
                changed: false,
                hidden: false,
            });
        }
        let pattern = targets.get(found.target_index).cloned();
        let precious = pattern
            .as_ref()
            .is_some_and(|p| self.db.special.precious.contains(p));
        let mut also = Vec::new();
        let others: Vec<&String> = targets
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != found.target_index)
            .map(|(_, t)| t)
            .collect();
        for (name, pat) in found.also_make.iter().zip(others) {
            let id = self.files.enter(name);
            let o = self.files.get_mut(id);
            o.is_target = true;
            o.pattern_target = Some(pat.clone());
            if self.db.special.precious.contains(pat) {
                self.files.get_mut(id).precious = true;
            }
            also.push(id);
        }
        let file = self.files.get_mut(f);
        if intermediate {
            file.deps = new_deps;
            file.intermediate = true;
            file.tried_implicit = true;
        } else {
            new_deps.append(&mut file.deps);
            file.deps = new_deps;
        }
        file.stem = Some(found.stem);
        file.cmds = recipe.map(|recipe| Cmds { recipe, loc });
        file.is_target = true;
        file.pattern_target = pattern;
        if precious {
            file.precious = true;
        }
        for id in &also {
            if !file.also_make.contains(id) {
                file.also_make.push(*id);
            }
        }
        // Each target of a pattern rule lists the others: one run makes them all.
        let me = f;
        for &id in &also {
            let others: Vec<FileId> = also
                .iter()
                .copied()
                .filter(|&o| o != id)
                .chain(std::iter::once(me))
                .collect();
            let o = self.files.get_mut(id);
            for x in others {
                if !o.also_make.contains(&x) {
                    o.also_make.push(x);
                }
            }
        }
    }

    /// The scope chain of `f`: itself, then the files that needed it.
    pub(crate) fn scope_names(&self, f: FileId) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = Some(f);
        while let Some(c) = cur {
            if out.len() > 64 {
                break;
            }
            out.push(self.files.get(c).hname.clone());
            cur = self.files.get(c).parent;
        }
        out
    }

    /// Second expansion of pending prerequisite text and `.EXTRA_PREREQS`, once per file.
    pub(crate) fn expand_deps(&mut self, host: &mut dyn Host, f: FileId) {
        let mut pending = std::mem::take(&mut self.files.get_mut(f).pending_expansion);
        // make expands only text with `$` (a static pattern rule's `%` counts as `$*`); the rest
        // is plain from the start, seen by the automatic variables of the texts expanded later.
        let plain: Vec<bool> = pending
            .iter()
            .map(|&(ri, _)| {
                self.db
                    .rules
                    .get(ri)
                    .is_some_and(|r| r.stem.is_none() && !r.prereq_text.contains('$'))
            })
            .collect();
        for pass_plain in [true, false] {
            for (k, &is_plain) in plain.iter().enumerate() {
                if is_plain == pass_plain {
                    self.expand_entry(host, f, &mut pending, k);
                }
            }
        }
        if self.files.get(f).cmds.is_some() || self.files.get(f).is_target {
            self.add_extra_prereqs(host, f);
        }
    }

    /// Second expansion of entry `k` of `pending` (rule index, position in the deps), its
    /// prerequisites put at that position; later entries move along. While it is expanded, `$^` and
    /// `$+` list the prerequisites already there and `$<` is empty when this entry comes first.
    fn expand_entry(&mut self, host: &mut dyn Host, f: FileId, pending: &mut [(usize, usize)], k: usize) {
        let (ri, pos) = pending[k];
        let Some(rule) = self.db.rules.get(ri) else {
            return;
        };
        let text = rule.prereq_text.clone();
        // make reports errors here at the last line it read for the rule (its recipe's end).
        let loc = rule
            .recipe
            .as_ref()
            .and_then(|r| r.lines.last().map(|l| l.loc.clone()))
            .unwrap_or_else(|| rule.loc.clone());
        let stem = rule.stem.clone();
        let names = self.scope_names(f);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut auto = self.auto_vars(f);
        if pos == 0 {
            auto.first_prereq.clear();
        }
        let scope = Scope {
            targets: &refs,
            auto: Some(&auto),
        };
        match self
            .db
            .expand_prereqs(host, &text, stem.as_deref(), &scope, Some(&loc))
        {
            Ok((normal, oo)) => {
                let named = normal.into_iter().map(|n| (n, false)).chain(oo.into_iter().map(|n| (n, true)));
                let new: Vec<Dep> = named
                    .map(|(n, order_only)| Dep {
                        file: self.files.enter(&n),
                        order_only,
                        changed: false,
                        hidden: false,
                    })
                    .collect();
                let n = new.len();
                let file = self.files.get_mut(f);
                let at = pos.min(file.deps.len());
                file.deps.splice(at..at, new);
                for e in pending.iter_mut().skip(k + 1) {
                    e.1 += n;
                }
            }
            Err(e) => self.fatal_error(e),
        }
    }

    fn add_extra_prereqs(&mut self, host: &mut dyn Host, f: FileId) {
        let name = self.files.get(f).hname.clone();
        let targets = [name.as_str()];
        let scope = Scope {
            targets: &targets,
            auto: None,
        };
        if self.db.lookup(".EXTRA_PREREQS", &scope).is_none() {
            return;
        }
        match self.db.expand(host, "$(.EXTRA_PREREQS)", &scope) {
            Ok(v) => {
                for n in v.split_whitespace() {
                    if n == name {
                        continue;
                    }
                    let file = self.files.enter(n);
                    self.files.get_mut(f).deps.push(Dep {
                        file,
                        order_only: false,
                        changed: false,
                        hidden: true,
                    });
                }
            }
            Err(e) => self.fatal_error(e),
        }
    }

    /// A language error during the build: printed as make prints it, and the build dies.
    pub(crate) fn fatal_error(&mut self, e: crate::error::Error) {
        match e.loc {
            Some(_) => self.events.push(Event::Stderr(e.to_string())),
            None => self.events.push(Event::Error(e.to_string())),
        }
        self.die();
    }

    pub(crate) fn complain(&mut self, f: FileId) {
        // A file that failed quietly while remaking makefiles: blame the prerequisite that failed.
        if self.files.get(f).no_diag {
            let deps: Vec<FileId> = self.files.get(f).deps.iter().map(|d| d.file).collect();
            for d in deps {
                let df = self.files.get(d);
                if df.updated && df.status >= Status::Question && d != f {
                    self.complain(d);
                    return;
                }
            }
        }
        let file = self.files.get(f);
        let name = file.name.clone();
        // The target that needed it, by the name it was written with (not where vpath found it).
        let parent = file.parent.map(|p| self.files.get(p).hname.clone());
        let what = match parent {
            Some(p) => format!("No rule to make target '{name}', needed by '{p}'"),
            None => format!("No rule to make target '{name}'"),
        };
        self.files.get_mut(f).no_diag = false;
        if !self.opts.keep_going {
            self.events
                .push(Event::Error(format!("*** {what}.  Stop.")));
            self.die();
        } else {
            self.events.push(Event::Error(format!("*** {what}.")));
        }
    }

    pub(crate) fn remake_file(&mut self, host: &mut dyn Host, f: FileId) {
        if self.files.get(f).cmds.is_none() {
            let file = self.files.get(f);
            if file.phony || file.is_target {
                self.files.get_mut(f).status = Status::Success;
            } else {
                if !self.opts.rebuilding_makefiles || !file.dontcare {
                    self.complain(f);
                } else {
                    self.files.get_mut(f).no_diag = true;
                }
                self.files.get_mut(f).status = Status::Failed;
            }
        } else {
            let any_recurse = self.any_recurse(f);
            if !self.opts.touch || any_recurse {
                self.execute_file_commands(host, f);
                return;
            }
            self.files.get_mut(f).status = Status::Success;
        }
        self.notice_finished_file(host, f);
    }

    fn any_recurse(&self, f: FileId) -> bool {
        self.files
            .get(f)
            .cmds
            .as_ref()
            .is_some_and(|c| c.recipe.lines.iter().any(|l| line_flags(&l.text).2))
    }

    fn all_recurse(&self, f: FileId) -> bool {
        self.files
            .get(f)
            .cmds
            .as_ref()
            .is_some_and(|c| c.recipe.lines.iter().all(|l| line_flags(&l.text).2))
    }

    fn execute_file_commands(&mut self, host: &mut dyn Host, f: FileId) {
        let Some(cmds) = self.files.get(f).cmds.clone() else {
            return;
        };
        let blank = cmds.recipe.lines.iter().all(|l| {
            l.text
                .chars()
                .all(|c| c.is_whitespace() || c == '@' || c == '-' || c == '+')
        });
        if blank {
            self.files.get_mut(f).state = CmdState::Running;
            self.files.get_mut(f).status = Status::Success;
            self.notice_finished_file(host, f);
            return;
        }
        if self.opts.question && !self.opts.rebuilding_makefiles && !self.any_recurse(f) {
            self.files.get_mut(f).state = CmdState::Running;
            self.files.get_mut(f).status = Status::Question;
            self.notice_finished_file(host, f);
            return;
        }
        let file = self.files.get_mut(f);
        file.state = CmdState::Running;
        file.job_dontcare = file.dontcare;
        if file.mtime_before_update.is_none() {
            file.mtime_before_update = file.mtime;
        }
        // The other targets of the same recipe are being made too (make's set_command_state).
        for a in self.files.get(f).also_make.clone() {
            self.files.get_mut(a).state = CmdState::Running;
        }
        self.commands_started += 1;
        self.queued_log.push(f);
        self.waiting.push_back(f);
        if self.opts.serial || self.db.special.notparallel {
            self.blocked = true;
        }
    }

    /// Records that `f` is done (make's notice_finished_file).
    pub(crate) fn notice_finished_file(&mut self, host: &mut dyn Host, f: FileId) {
        let ran = self.files.get(f).state == CmdState::Running;
        let mut touched = false;
        {
            let file = self.files.get_mut(f);
            file.state = CmdState::Finished;
            file.updated = true;
        }
        let eff_touch = self.opts.touch && !self.opts.rebuilding_makefiles;
        if eff_touch && self.files.get(f).status == Status::Success {
            let has_cmds = self.files.get(f).cmds.is_some();
            if has_cmds && self.all_recurse(f) {
                // Only recursive lines: they ran; nothing to touch.
            } else if self.files.get(f).phony {
                self.files.get_mut(f).status = Status::Success;
            } else if has_cmds {
                let silent = self.opts.silent || self.db.special.silent_all;
                let path = self.files.get(f).name.clone();
                self.events.push(Event::Touch {
                    path: path.clone(),
                    silent,
                    dry_run: self.opts.just_print,
                });
                if !self.opts.just_print {
                    // make's touch_file: a failure fails the target.
                    if let Err(e) = host.touch(&path) {
                        let reason = crate::eval::io_reason(&e);
                        self.events.push(Event::Error(format!("touch: open: {path}: {reason}")));
                        self.files.get_mut(f).status = Status::Failed;
                    }
                }
                self.dirs.invalidate(&self.files.get(f).name.clone());
                self.commands_started += 1;
                self.queued_log.push(f);
                self.files.get_mut(f).ran_commands = true;
                touched = true;
            }
        }
        if self.files.get(f).mtime_before_update.is_none() {
            let m = self.files.get(f).mtime;
            self.files.get_mut(f).mtime_before_update = m;
        }
        let phony = self.files.get(f).phony;
        if (ran && !phony) || touched {
            let pretend = !self.opts.rebuilding_makefiles
                && (self.opts.question || self.opts.just_print || self.opts.touch);
            let new = if pretend && self.files.get(f).cmds.is_some() {
                !self.all_recurse(f)
            } else {
                self.files.get(f).is_target && self.files.get(f).cmds.is_none()
            };
            self.files.get_mut(f).mtime = if new { Some(Time::New) } else { None };
        }
        if let Some(head) = self.files.get(f).dc_head {
            // When the last double-colon entry is done, all entries share its time.
            let mut all_done = true;
            let mut cur = Some(head);
            let mut chain = Vec::new();
            while let Some(c) = cur {
                all_done &= self.files.get(c).updated;
                chain.push(c);
                cur = self.files.get(c).dc_next;
            }
            if all_done {
                let t = self.files.get(f).mtime;
                for c in chain {
                    self.files.get_mut(c).mtime = t;
                }
            }
        }
        let status = self.files.get(f).status;
        if ran && status != Status::None {
            let also = self.files.get(f).also_make.clone();
            for a in also {
                let o = self.files.get_mut(a);
                o.state = CmdState::Finished;
                o.updated = true;
                o.status = status;
                if !o.phony {
                    o.mtime = None;
                    // Re-stat now: file_mtime caches the fresh time for the targets that follow.
                    let _ = self.file_mtime(host, a, false);
                }
            }
        } else if status == Status::None {
            self.files.get_mut(f).status = Status::Success;
        }
        self.made_order.push(f);
    }

    /// make's child_error for a failed (not ignored) recipe line: the message text.
    pub(crate) fn failure_message(&self, f: FileId, line: usize, exit: ExitKind) -> String {
        let file = self.files.get(f);
        let loc = file.cmds.as_ref().and_then(|c| {
            c.recipe
                .lines
                .get(line.min(c.recipe.lines.len().saturating_sub(1)))
                .map(|l| l.loc.clone())
        });
        let where_ = match &loc {
            Some(l) if l.line > 0 => format!("{}:{}", l.file, l.line),
            _ => "<builtin>".to_string(),
        };
        let what = match exit {
            ExitKind::Code(c) => format!("Error {c}"),
            ExitKind::Signal(s) => signal_name(s),
        };
        format!("*** [{where_}: {}] {what}", file.name)
    }

    /// Builds the automatic variables of `f` from its prerequisites.
    pub(crate) fn auto_vars(&self, f: FileId) -> AutoVars {
        let file = self.files.get(f);
        let mut av = AutoVars {
            target: file.name.clone(),
            ..Default::default()
        };
        let mut seen_all = std::collections::HashSet::new();
        let mut seen_newer = std::collections::HashSet::new();
        let mut oo = Vec::new();
        for d in &file.deps {
            if d.hidden {
                continue;
            }
            let name = self.files.get(d.file).name.clone();
            if d.order_only {
                oo.push(name);
                continue;
            }
            if av.first_prereq.is_empty() && av.all_dups.is_empty() {
                av.first_prereq = name.clone();
            }
            av.all_dups.push(name.clone());
            if seen_all.insert(name.clone()) {
                av.all.push(name.clone());
            }
            if d.changed && seen_newer.insert(name.clone()) {
                av.newer.push(name);
            }
        }
        let mut seen_oo = std::collections::HashSet::new();
        for n in oo {
            if !seen_all.contains(&n) && seen_oo.insert(n.clone()) {
                av.order_only.push(n);
            }
        }
        if file.from_default {
            av.first_prereq = file.name.clone();
        }
        av.stem = match &file.stem {
            Some(s) => s.clone(),
            None => self
                .db
                .special
                .suffixes
                .iter()
                .find(|s| file.name.len() > s.len() && file.name.ends_with(s.as_str()))
                .map(|s| file.name[..file.name.len() - s.len()].to_string())
                .unwrap_or_default(),
        };
        av
    }
}

/// strsignal's wording for the signals recipes commonly die of.
pub(crate) fn signal_name(sig: i32) -> String {
    match sig {
        1 => "Hangup".into(),
        2 => "Interrupt".into(),
        3 => "Quit".into(),
        4 => "Illegal instruction".into(),
        6 => "Aborted".into(),
        7 => "Bus error".into(),
        8 => "Floating point exception".into(),
        9 => "Killed".into(),
        10 => "User defined signal 1".into(),
        11 => "Segmentation fault".into(),
        12 => "User defined signal 2".into(),
        13 => "Broken pipe".into(),
        14 => "Alarm clock".into(),
        15 => "Terminated".into(),
        n => format!("Unknown signal {n}"),
    }
}
