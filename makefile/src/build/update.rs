//! make's update algorithm (remake.c): one pass over the goals, `update_file`, `update_file_1`
//! and `check_dep`, with make's rules for phony, missing, intermediate and FORCE-style files.

use crate::build::events::Event;
use crate::build::file::{CmdState, FileId, Status, Time};
use crate::build::plan::Plan;
use crate::host::Host;

fn bad(s: Status) -> bool {
    s >= Status::Question
}

/// What the walk over a target's prerequisites does after updating one of them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DepStep {
    /// The build is dying: the target fails at once.
    Die,
    /// Stop the walk (a job started in serial mode, or a failure without -k).
    Stop,
    /// Go on with the next prerequisite.
    Next,
}

impl Plan {
    /// After prerequisite `i` (file `d`, whose time was `mtime` before) of `f` was updated with
    /// status `st`: folds the status into `dep_status`, notes whether it is still running, and,
    /// when nothing runs, whether it changed (make's `check_dep` bookkeeping in `update_file_1`).
    fn after_dep(
        &mut self,
        host: &mut dyn Host,
        (f, i, d): (FileId, usize, FileId),
        st: Status,
        mtime: Time,
        dep_status: &mut Status,
        running: &mut bool,
    ) -> DepStep {
        if self.dying {
            return DepStep::Die;
        }
        *dep_status = (*dep_status).max(if st == Status::None { Status::Success } else { st });
        *running |= self.chain_running(d);
        if self.blocked {
            *running = true;
            return DepStep::Stop;
        }
        if bad(*dep_status) && !self.opts.keep_going {
            return DepStep::Stop;
        }
        if !*running {
            let now = self.file_mtime(host, d, true);
            self.files.get_mut(f).deps[i].changed = now != mtime || mtime == Time::Missing;
        }
        DepStep::Next
    }

    /// One pass over the goals (make's update_goal_chain loop body): starts what can start.
    pub fn poll(&mut self, host: &mut dyn Host) {
        if self.dying {
            return;
        }
        let serial = self.opts.serial || self.db.special.notparallel;
        if serial && (!self.running.is_empty() || !self.waiting.is_empty()) {
            return;
        }
        self.blocked = false;
        self.considered += 1;
        let rebuilding = self.opts.rebuilding_makefiles;
        let mut gi = 0;
        while gi < self.goals.len() {
            let gfile = self.goals[gi].file;
            let dontcare = self.goals[gi].dontcare;
            let mut stop = false;
            let mut any_not_updated = false;
            let mut cur = Some(self.files.get(gfile).dc_head.unwrap_or(gfile));
            while let Some(f) = cur {
                self.files.get_mut(f).dontcare = dontcare;
                let started = self.commands_started;
                let log_start = self.queued_log.len();
                let fail = self.update_file(host, f, u32::from(rebuilding));
                let queued: Vec<FileId> = self.queued_log[log_start..].to_vec();
                self.goals[gi].started.extend(queued);
                if self.dying {
                    return;
                }
                if self.blocked {
                    if self.commands_started > started {
                        self.goals[gi].changed = true;
                    }
                    return;
                }
                if self.commands_started > started {
                    self.goals[gi].changed = true;
                }
                stop = false;
                let changed = self.goal_changed(gi);
                let (updated, fstatus) = {
                    let file = self.files.get(f);
                    (file.updated, file.status)
                };
                if (fail != Status::Success || updated) && self.status < Status::Question {
                    if fstatus != Status::Success && fstatus != Status::None {
                        self.status = fstatus;
                        stop = self.opts.question && !self.opts.keep_going && !rebuilding;
                    } else {
                        let mtime = self.file_mtime(host, f, true);
                        let before = self.files.get(f).mtime_before_update;
                        if updated && changed && Some(mtime) != before {
                            if !rebuilding || (!self.opts.just_print && !self.opts.question) {
                                self.status = Status::Success;
                                self.remade = true;
                            }
                            if rebuilding && self.files.get(f).dontcare {
                                stop = true;
                            }
                        }
                    }
                }
                any_not_updated |= !self.files.get(f).updated;
                self.files.get_mut(f).dontcare = false;
                if stop {
                    break;
                }
                cur = self.files.get(f).dc_next;
            }
            if stop || !any_not_updated {
                let changed = self.goal_changed(gi);
                let g = &self.goals[gi];
                let file = self.files.get(g.file);
                if !rebuilding
                    && file.status == Status::Success
                    && !changed
                    && !self.opts.silent
                    && !self.db.special.silent_all
                    && !self.opts.question
                {
                    let msg = if file.phony || file.cmds.is_none() {
                        format!("Nothing to be done for '{}'.", file.name)
                    } else {
                        format!("'{}' is up to date.", file.name)
                    };
                    self.events.push(Event::Message(msg));
                }
                self.goals.remove(gi);
                if stop {
                    break;
                }
            } else {
                gi += 1;
            }
        }
    }

    /// Whether commands actually ran for goal `gi` (make's `g->changed`): a job with commands,
    /// or a touch. A queued recipe that expanded to nothing does not count.
    fn goal_changed(&self, gi: usize) -> bool {
        let g = &self.goals[gi];
        g.changed
            && g.started
                .iter()
                .any(|&f| self.files.get(f).ran_commands || self.files.get(f).running_job)
    }

    /// The file's modification time, cached; a missing file is looked for by directory search.
    pub(crate) fn file_mtime(&mut self, host: &mut dyn Host, f: FileId, search: bool) -> Time {
        if let Some(t) = self.files.get(f).mtime {
            return t;
        }
        let name = self.files.get(f).name.clone();
        let mut t = Time::from_host(host.mtime(&name));
        if t == Time::Missing && search && name.starts_with("-l") && name.len() > 2 {
            if let Some(found) = self.library_search(host, &name[2..]) {
                t = Time::from_host(host.mtime(&found));
                self.files.get_mut(f).name = found;
                self.files.get_mut(f).mtime = Some(t);
                return t;
            }
        }
        if t == Time::Missing && search && !self.files.get(f).ignore_vpath && !self.vpath.is_empty()
        {
            if let Some(found) = self.vpath.search(host, &mut self.dirs, &name) {
                // As make's vpath search: a found name that `-o`/`-W` (or a pretended
                // update) marked old or new keeps that time.
                let marked = self
                    .files
                    .lookup(&found)
                    .and_then(|id| self.files.get(id).mtime)
                    .filter(|m| matches!(m, Time::Old | Time::New));
                t = marked.unwrap_or_else(|| Time::from_host(host.mtime(&found)));
                let file = self.files.get_mut(f);
                if self.vpath.in_gpath(&found) {
                    file.hname = found.clone();
                }
                file.name = found;
            }
        }
        self.files.get_mut(f).mtime = Some(t);
        t
    }

    /// make's library search for a `-lNAME` prerequisite: each `.LIBPATTERNS` name in the
    /// current directory, through directory search, then in the system library directories.
    fn library_search(&mut self, host: &mut dyn Host, lib: &str) -> Option<String> {
        let patterns = self
            .db
            .expand(host, "$(.LIBPATTERNS)", &crate::db::Scope::GLOBAL)
            .unwrap_or_else(|_| "lib%.so lib%.a".into());
        for pat in patterns.split_whitespace() {
            let name = crate::build::pattern::subst(pat, lib);
            if host.mtime(&name).is_some() {
                return Some(name);
            }
            if let Some(found) = self.vpath.search(host, &mut self.dirs, &name) {
                return Some(found);
            }
            for dir in ["/lib", "/usr/lib", "/usr/local/lib"] {
                let cand = format!("{dir}/{name}");
                if host.mtime(&cand).is_some() {
                    return Some(cand);
                }
            }
        }
        None
    }

    fn chain_running(&self, f: FileId) -> bool {
        let mut cur = Some(self.files.get(f).dc_head.unwrap_or(f));
        while let Some(c) = cur {
            let st = self.files.get(c).state;
            if st == CmdState::Running || st == CmdState::DepsRunning {
                return true;
            }
            cur = self.files.get(c).dc_next;
        }
        false
    }

    pub(crate) fn update_file(&mut self, host: &mut dyn Host, file: FileId, depth: u32) -> Status {
        let head = self.files.get(file).dc_head.unwrap_or(file);
        {
            let h = self.files.get(head);
            if h.considered == self.considered
                && !(h.updated && bad(h.status) && !h.dontcare && h.no_diag)
            {
                return if h.state == CmdState::Finished {
                    h.status
                } else {
                    Status::Success
                };
            }
        }
        let mut status = Status::Success;
        let mut cur = Some(head);
        while let Some(f) = cur {
            self.files.get_mut(f).considered = self.considered;
            let new = self.update_file_1(host, f, depth);
            if self.dying {
                return Status::Failed;
            }
            if self.blocked {
                return Status::Success;
            }
            if bad(new) && !self.opts.keep_going {
                return new;
            }
            let st = self.files.get(f).state;
            if st == CmdState::Running || st == CmdState::DepsRunning {
                return Status::Success;
            }
            if new > status && new != Status::None {
                status = new;
            }
            cur = self.files.get(f).dc_next;
        }
        status
    }

    fn circular(&mut self, f: FileId, d: FileId) {
        let msg = format!(
            "Circular {} <- {} dependency dropped.",
            self.files.get(f).name,
            self.files.get(d).name
        );
        self.events.push(Event::Error(msg));
    }

    fn update_file_1(&mut self, host: &mut dyn Host, f: FileId, depth: u32) -> Status {
        {
            let file = self.files.get(f);
            if file.updated {
                if bad(file.status) {
                    if file.no_diag && !file.dontcare {
                        self.complain(f);
                    }
                    return self.files.get(f).status;
                }
                return Status::Success;
            }
            match file.state {
                CmdState::Running => return Status::Success,
                CmdState::Finished => return file.status,
                _ => {}
            }
        }
        let depth = depth + 1;
        {
            let file = self.files.get_mut(f);
            file.no_diag = file.dontcare;
            file.updating = true;
        }
        self.expand_deps(host, f);
        let this_mtime = self.file_mtime(host, f, true);
        let noexist = this_mtime == Time::Missing;
        let mut must_make = noexist;
        self.find_recipe(host, f);

        let mut dep_status = Status::Success;
        let mut running = false;
        let mut i = 0;
        let resuming = self.files.get(f).state == CmdState::DepsRunning;
        if resuming {
            let file = self.files.get(f);
            i = file.dep_cursor.min(file.deps.len());
            must_make |= file.cursor_must_make;
            dep_status = file.cursor_status;
        } else {
            let file = self.files.get_mut(f);
            file.dep_cursor = 0;
            file.cursor_must_make = false;
            file.cursor_status = Status::Success;
        }
        while i < self.files.get(f).deps.len() {
            let d = self.files.get(f).deps[i].file;
            let mtime = self.file_mtime(host, d, true);
            if self.files.get(d).updating {
                self.circular(f, d);
                self.files.get_mut(f).deps.remove(i);
                continue;
            }
            self.files.get_mut(d).parent = Some(f);
            let mut maybe_make = must_make;
            let saved_dontcare = self.files.get(d).dontcare;
            if self.opts.rebuilding_makefiles {
                self.files.get_mut(d).dontcare = self.files.get(f).dontcare;
            }
            let st = self.check_dep(host, d, depth, this_mtime, &mut maybe_make);
            if self.opts.rebuilding_makefiles {
                self.files.get_mut(d).dontcare = saved_dontcare;
            }
            let step = self.after_dep(host, (f, i, d), st, mtime, &mut dep_status, &mut running);
            if step == DepStep::Die {
                return Status::Failed;
            }
            if !self.files.get(f).deps[i].order_only {
                must_make = maybe_make;
            }
            if step == DepStep::Stop {
                break;
            }
            if !running && self.files.get(d).updated && !self.files.get(d).intermediate {
                // Everything up to here is final: later passes start after it.
                let file = self.files.get_mut(f);
                file.dep_cursor = i + 1;
                file.cursor_must_make = must_make;
                file.cursor_status = dep_status;
            }
            i += 1;
        }

        // In serial mode a started job ends the walk (make would have waited for it here).
        if (must_make || self.opts.always_make) && !self.blocked {
            let mut i = 0;
            while i < self.files.get(f).deps.len() {
                let d = self.files.get(f).deps[i].file;
                if self.files.get(d).intermediate {
                    let mtime = self.file_mtime(host, d, true);
                    self.files.get_mut(d).parent = Some(f);
                    let st = self.update_file(host, d, depth);
                    match self.after_dep(host, (f, i, d), st, mtime, &mut dep_status, &mut running) {
                        DepStep::Die => return Status::Failed,
                        DepStep::Stop => break,
                        DepStep::Next => {}
                    }
                }
                i += 1;
            }
        }

        self.files.get_mut(f).updating = false;
        if running {
            self.files.get_mut(f).state = CmdState::DepsRunning;
            return Status::Success;
        }
        if bad(dep_status) {
            self.files.get_mut(f).status = dep_status;
            self.notice_finished_file(host, f);
            if depth == 1 && self.opts.keep_going && !self.opts.just_print && !self.opts.question {
                let msg = format!(
                    "Target '{}' not remade because of errors.",
                    self.files.get(f).name
                );
                self.events.push(Event::Error(msg));
            }
            return dep_status;
        }
        if self.files.get(f).state == CmdState::DepsRunning {
            self.files.get_mut(f).state = CmdState::NotStarted;
        }

        let mut deps_changed = false;
        let n = self.files.get(f).deps.len();
        for i in 0..n {
            let d = self.files.get(f).deps[i].file;
            let d_mtime = self.file_mtime(host, d, true);
            let dep = &self.files.get(f).deps[i];
            if !dep.order_only {
                deps_changed |= dep.changed;
            }
            let newer = noexist || d_mtime > this_mtime;
            self.files.get_mut(f).deps[i].changed |= newer;
        }

        let file = self.files.get(f);
        if file.dc_head.is_some() && file.deps.is_empty() {
            must_make = true;
        } else if !noexist
            && file.is_target
            && !deps_changed
            && file.cmds.is_none()
            && !self.opts.always_make
        {
            must_make = false;
        } else if !must_make && file.cmds.is_some() && self.opts.always_make {
            must_make = true;
        }

        if !must_make {
            self.notice_finished_file(host, f);
            return Status::Success;
        }

        {
            let file = self.files.get_mut(f);
            if file.name != file.hname {
                // Remade in the current directory, not where directory search found it.
                file.name = file.hname.clone();
                file.ignore_vpath = true;
            }
        }
        self.remake_file(host, f);
        if self.files.get(f).state != CmdState::Finished {
            return Status::Success;
        }
        self.files.get_mut(f).updated = true;
        self.files.get(f).status
    }

    /// Gives a file without a recipe one from an implicit rule or `.DEFAULT`.
    pub(crate) fn find_recipe(&mut self, host: &mut dyn Host, f: FileId) {
        let file = self.files.get(f);
        if !file.phony && file.cmds.is_none() && !file.tried_implicit {
            self.try_implicit_rule(host, f);
            self.files.get_mut(f).tried_implicit = true;
        }
        let file = self.files.get(f);
        if file.cmds.is_none() && !file.is_target && self.default_cmds.is_some() {
            let cmds = self.default_cmds.clone();
            let file = self.files.get_mut(f);
            file.cmds = cmds;
            file.from_default = true;
        }
    }

    fn check_dep(
        &mut self,
        host: &mut dyn Host,
        d: FileId,
        depth: u32,
        this_mtime: Time,
        must_make: &mut bool,
    ) -> Status {
        self.files.get_mut(d).updating = true;
        let mut dep_status = Status::Success;
        let (phony, intermediate) = {
            let f = self.files.get(d);
            (f.phony, f.intermediate)
        };
        if phony || !intermediate {
            dep_status = self.update_file(host, d, depth);
            let mtime = self.file_mtime(host, d, true);
            if mtime == Time::Missing || mtime > this_mtime {
                *must_make = true;
            }
        } else {
            self.expand_deps(host, d);
            self.find_recipe(host, d);
            let mtime = self.file_mtime(host, d, true);
            if mtime != Time::Missing && mtime > this_mtime {
                *must_make = true;
            } else {
                let mut deps_running = false;
                let st = self.files.get(d).state;
                if st != CmdState::Running {
                    if st == CmdState::DepsRunning {
                        self.files.get_mut(d).considered = 0;
                    }
                    self.files.get_mut(d).state = CmdState::NotStarted;
                }
                let mut j = 0;
                while j < self.files.get(d).deps.len() {
                    let dd = self.files.get(d).deps[j].file;
                    if self.files.get(dd).updating {
                        self.circular(d, dd);
                        self.files.get_mut(d).deps.remove(j);
                        continue;
                    }
                    self.files.get_mut(dd).parent = Some(d);
                    let mut maybe = *must_make;
                    let st = self.check_dep(host, dd, depth, this_mtime, &mut maybe);
                    if self.dying {
                        return Status::Failed;
                    }
                    dep_status = dep_status.max(if st == Status::None {
                        Status::Success
                    } else {
                        st
                    });
                    if !self.files.get(d).deps[j].order_only {
                        *must_make = maybe;
                    }
                    if self.blocked {
                        deps_running = true;
                        break;
                    }
                    if bad(dep_status) && !self.opts.keep_going {
                        break;
                    }
                    let s = self.files.get(dd).state;
                    if s == CmdState::Running || s == CmdState::DepsRunning {
                        deps_running = true;
                    }
                    j += 1;
                }
                if deps_running {
                    self.files.get_mut(d).state = CmdState::DepsRunning;
                }
            }
        }
        self.files.get_mut(d).updating = false;
        dep_status
    }
}
