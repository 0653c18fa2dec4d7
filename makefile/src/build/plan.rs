//! The build `Plan`: a state machine over a `Database` that yields jobs and takes back results.
//!
//! Driving protocol (the local executor and, later, the coordinator):
//! 1. `Plan::new(db, host, goals, opts)`.
//! 2. Loop: `poll(host)` runs one pass over the goals (make's update_goal_chain body); then take
//!    jobs with `next_job(host)` while there are free slots; print `take_events()`; when nothing
//!    is ready, wait for a running job and report it with `job_finished(id, result, host)`.
//! 3. When `is_done()` and no job is running, `finish(host)` yields the `Outcome` (and queues
//!    the removal of intermediate files as an event).

use std::collections::{HashMap, HashSet, VecDeque};

use crate::build::dircache::DirCache;
use crate::build::events::Event;
use crate::build::file::{CmdState, Cmds, FileId, Files, Status, Time};
use crate::build::graph;
use crate::build::implicit::Vpath;
use crate::build::job::{Job, JobId, JobResult};
use crate::db::{Database, Scope};
use crate::host::{Host, Mtime};

/// The flags that change what the Plan decides (`-j` is the executor's business).
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// -k
    pub keep_going: bool,
    /// -n
    pub just_print: bool,
    /// -q
    pub question: bool,
    /// -t
    pub touch: bool,
    /// -B
    pub always_make: bool,
    /// -i
    pub ignore_errors: bool,
    /// -s
    pub silent: bool,
    /// --trace
    pub trace: bool,
    /// -o FILE
    pub old_files: Vec<String>,
    /// -W FILE
    pub new_files: Vec<String>,
    /// Remaking the makefiles before the real build: no `Nothing to be done` messages, `-n`/`-q`/`-t`
    /// do not apply, and goals marked `dontcare` may fail silently.
    pub rebuilding_makefiles: bool,
    /// One job at a time (`-j1` or `.NOTPARALLEL`): like make, finish each started job before
    /// looking further, so recipes run in make's depth-first order.
    pub serial: bool,
}

/// How a build ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything was up to date or remade (`remade`: some goal's file changed; used when
    /// remaking makefiles to decide on a restart).
    Success {
        /// Whether any goal was actually remade.
        remade: bool,
    },
    /// `-q` found something out of date (exit status 1).
    Question,
    /// A recipe failed or a target could not be made (exit status 2).
    Failed,
}

pub(crate) struct Goal {
    pub(crate) file: FileId,
    pub(crate) changed: bool,
    /// Files whose recipes were started while updating this goal.
    pub(crate) started: Vec<FileId>,
    pub(crate) dontcare: bool,
}

/// The build plan. See the module documentation for the protocol.
pub struct Plan {
    pub(crate) db: Database,
    pub(crate) opts: PlanOptions,
    pub(crate) files: Files,
    pub(crate) dirs: DirCache,
    pub(crate) vpath: Vpath,
    pub(crate) impossible: HashSet<String>,
    pub(crate) in_use: Vec<bool>,
    pub(crate) goals: Vec<Goal>,
    pub(crate) considered: u32,
    pub(crate) commands_started: u64,
    pub(crate) events: Vec<Event>,
    /// Files whose jobs make has started but that wait for a job slot (make's waiting_jobs).
    pub(crate) waiting: VecDeque<FileId>,
    pub(crate) running: HashMap<JobId, FileId>,
    pub(crate) next_id: u32,
    pub(crate) status: Status,
    pub(crate) remade: bool,
    /// A fatal error (or a failure without -k) stopped the build: start nothing more.
    pub(crate) dying: bool,
    pub(crate) waiting_printed: bool,
    pub(crate) default_cmds: Option<Cmds>,
    /// Order in which files got an update status (for `rm` of intermediates).
    pub(crate) made_order: Vec<FileId>,
    /// Serial mode: a job was started in this pass; stop walking until it finishes.
    pub(crate) blocked: bool,
    /// Every file queued for a job or touched, in order (attributes started commands to goals).
    pub(crate) queued_log: Vec<FileId>,
}

impl Plan {
    /// A plan to bring `goals` up to date (`goals` empty: the default goal).
    /// Each goal may be marked `dontcare` (optional makefiles while remaking makefiles).
    pub fn new(
        db: Database,
        host: &mut dyn Host,
        goals: &[(String, bool)],
        opts: PlanOptions,
    ) -> Plan {
        let mut db = db;
        let mut files = graph::build(&db);
        let mut vpath = Vpath {
            directives: db.vpaths.clone(),
            ..Vpath::default()
        };
        vpath.general = split_path_list(
            &db.expand(host, "$(VPATH)", &Scope::GLOBAL)
                .unwrap_or_default(),
        );
        vpath.gpath = split_path_list(
            &db.expand(host, "$(GPATH)", &Scope::GLOBAL)
                .unwrap_or_default(),
        );
        let default_cmds = db
            .special
            .default_rule
            .and_then(|i| db.rules.get(i))
            .and_then(|r| {
                r.recipe.as_ref().map(|rec| Cmds {
                    recipe: rec.clone(),
                    loc: r.loc.clone(),
                })
            });
        for name in &opts.old_files {
            let id = files.enter(name);
            let f = files.get_mut(id);
            f.mtime = Some(Time::Old);
            f.mtime_before_update = Some(Time::Old);
            f.updated = true;
            f.status = Status::Success;
            f.state = CmdState::Finished;
        }
        for name in &opts.new_files {
            let id = files.enter(name);
            let f = files.get_mut(id);
            f.mtime = Some(Time::New);
            f.mtime_before_update = Some(Time::New);
        }
        let mut events = Vec::new();
        let mut goal_list = Vec::new();
        let mut dying = false;
        if goals.is_empty() && !opts.rebuilding_makefiles {
            match db.default_goal() {
                Some(g) => {
                    let file = files.enter(&g);
                    goal_list.push(Goal {
                        file,
                        changed: false,
                        started: Vec::new(),
                        dontcare: false,
                    });
                }
                None if !opts.rebuilding_makefiles => {
                    events.push(Event::Error("*** No targets.  Stop.".into()));
                    dying = true;
                }
                None => {}
            }
        }
        for (g, dontcare) in goals {
            let file = files.enter(g);
            goal_list.push(Goal {
                file,
                changed: false,
                started: Vec::new(),
                dontcare: *dontcare,
            });
        }
        Plan {
            db,
            opts,
            files,
            dirs: DirCache::default(),
            vpath,
            impossible: HashSet::new(),
            in_use: Vec::new(),
            goals: goal_list,
            considered: 0,
            commands_started: 0,
            events,
            waiting: VecDeque::new(),
            running: HashMap::new(),
            next_id: 0,
            status: if dying { Status::Failed } else { Status::None },
            remade: false,
            dying,
            waiting_printed: false,
            default_cmds,
            made_order: Vec::new(),
            blocked: false,
            queued_log: Vec::new(),
        }
    }

    /// The database (for the executor: variables such as `.NOTPARALLEL`).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Mutable access to the database (the executor expands with it after the build).
    pub fn database_mut(&mut self) -> &mut Database {
        &mut self.db
    }

    /// Takes the database back (after remaking makefiles).
    pub fn into_database(self) -> Database {
        self.db
    }

    /// `.NOTPARALLEL`: run one job at a time whatever `-j` says.
    pub fn not_parallel(&self) -> bool {
        self.db.special.notparallel
    }

    /// The messages and file operations produced so far, in order.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Whether nothing more will be started: every goal is finished, or the build is dying.
    pub fn is_done(&self) -> bool {
        self.dying || (self.goals.is_empty() && self.waiting.is_empty())
    }

    /// Whether the build stopped at an error (or a signal) rather than finishing its goals.
    pub fn is_dying(&self) -> bool {
        self.dying
    }

    /// How many jobs are handed out and not yet reported.
    pub fn running_jobs(&self) -> usize {
        self.running.len()
    }

    /// Whether a job is waiting for a slot.
    pub fn has_waiting_job(&self) -> bool {
        !self.dying && !self.waiting.is_empty()
    }

    /// The targets of the running jobs that an interrupt must delete (not precious, not phony),
    /// with the mtimes they had before their recipes started.
    pub fn interrupted_targets(&self) -> Vec<(String, Option<Mtime>)> {
        let mut ids: Vec<(&JobId, &FileId)> = self.running.iter().collect();
        ids.sort();
        ids.into_iter().flat_map(|(_, &fid)| self.deletable_targets(fid)).collect()
    }

    /// The files a failed or interrupted job for `fid` made (its target and the targets made with
    /// it), each with its time before the build, leaving out precious and phony ones.
    fn deletable_targets(&self, fid: FileId) -> Vec<(String, Option<Mtime>)> {
        let mut ids = vec![fid];
        ids.extend(self.files.get(fid).also_make.iter().copied());
        ids.into_iter()
            .filter(|&id| {
                let f = self.files.get(id);
                !(f.precious || f.phony || self.precious_by_pattern(id))
            })
            .map(|id| {
                let f = self.files.get(id);
                let before = match f.mtime_before_update {
                    Some(Time::At(m)) => Some(m),
                    _ => None,
                };
                (f.name.clone(), before)
            })
            .collect()
    }

    /// Intermediate files made so far that an interrupt should delete (make's
    /// `*** Deleting intermediate file` on a fatal signal).
    pub fn intermediates_to_remove(&self) -> Vec<String> {
        if self.opts.question || self.opts.touch || self.db.special.secondary_all {
            return Vec::new();
        }
        let mut names = self
            .made_order
            .iter()
            .map(|&id| self.files.get(id))
            // What did not exist before the build will not exist after it; what did is kept.
            .filter(|f| f.intermediate && !f.precious && !f.secondary && f.status != Status::None)
            .filter(|f| f.mtime_before_update == Some(Time::Missing))
            .filter(|f| !self.precious_name_pattern(f.pattern_target.as_deref()))
            .map(|f| f.name.clone())
            .collect::<Vec<String>>();
        let mut seen = HashSet::new();
        names.retain(|n| seen.insert(n.clone()));
        // make removes them in the order of its file hash table.
        let entries = self.files.all.len() + self.db.special.suffixes.len();
        crate::build::hashorder::sort_like_make(&mut names, entries);
        names
    }

    pub(crate) fn precious_by_pattern(&self, id: FileId) -> bool {
        self.precious_name_pattern(self.files.get(id).pattern_target.as_deref())
    }

    fn precious_name_pattern(&self, pattern: Option<&str>) -> bool {
        pattern.is_some_and(|p| self.db.special.precious.contains(p))
    }

    /// Ends the build: queues the removal of intermediate files and returns the outcome.
    pub fn finish(&mut self, _host: &mut dyn Host) -> Outcome {
        if !self.opts.rebuilding_makefiles {
            let paths = self.intermediates_to_remove();
            if !paths.is_empty() {
                self.events.push(Event::RemoveIntermediates {
                    paths,
                    silent: self.opts.silent || self.db.special.silent_all,
                    dry_run: self.opts.just_print,
                });
            }
        }
        match self.status {
            Status::Failed => Outcome::Failed,
            Status::Question => Outcome::Question,
            _ => Outcome::Success {
                remade: self.remade,
            },
        }
    }

    /// The next job to run, if one is waiting (its recipe is expanded now, as make does when
    /// it starts a job).
    pub fn next_job(&mut self, host: &mut dyn Host) -> Option<Job> {
        while !self.dying {
            let fid = self.waiting.pop_front()?;
            if let Some(job) = self.start_job(host, fid) {
                return Some(job);
            }
        }
        None
    }

    /// Reports a job's result.
    pub fn job_finished(&mut self, id: JobId, result: JobResult, host: &mut dyn Host) {
        let Some(fid) = self.running.remove(&id) else {
            return;
        };
        self.files.get_mut(fid).running_job = false;
        let name = self.files.get(fid).name.clone();
        self.dirs.invalidate(&name);
        match result {
            JobResult::Success => {
                self.files.get_mut(fid).status = Status::Success;
            }
            JobResult::Failed { exit: crate::build::job::ExitKind::Code(1), .. } if self.opts.question => {
                // Under -q a recursive make answering "not up to date" (status 1) is an answer,
                // not an error.
                self.files.get_mut(fid).status = Status::Question;
            }
            JobResult::Failed { line, exit } => {
                let msg = self.failure_message(fid, line, exit);
                if self.opts.rebuilding_makefiles && self.files.get(fid).job_dontcare {
                    let file = self.files.get_mut(fid);
                    file.deferred_error = Some(msg);
                    file.no_diag = true;
                } else {
                    self.events.push(Event::Error(msg));
                }
                self.files.get_mut(fid).status = Status::Failed;
                // A recipe killed by a signal loses its target even without .DELETE_ON_ERROR.
                if self.db.special.delete_on_error || matches!(exit, crate::build::job::ExitKind::Signal(_)) {
                    self.delete_targets_of(fid);
                }
            }
        }
        self.notice_finished_file(host, fid);
        let failed = self.files.get(fid).status == Status::Failed;
        if failed && !self.opts.keep_going && !(self.opts.rebuilding_makefiles && self.files.get(fid).job_dontcare) {
            self.die();
        }
    }

    /// After remaking makefiles: whether the makefile `name` was brought up to date without error.
    pub fn makefile_updated_ok(&self, name: &str) -> bool {
        self.files.lookup(name).is_some_and(|f| {
            let f = self.files.get(f);
            // A phony makefile's time never changes in make's eyes: remaking it restarts nothing.
            f.updated && f.status == Status::Success && !f.phony
        })
    }

    /// After remaking makefiles: whether the makefile `name` could not be remade.
    pub fn makefile_failed(&self, name: &str) -> bool {
        self.files
            .lookup(name)
            .is_some_and(|f| self.files.get(f).status >= Status::Question)
    }

    /// Reports why the required makefile `name` could not be remade (the recipe error kept
    /// while remaking makefiles, or make's `No rule to make target`); without `keep_going`
    /// the build stops.
    pub fn report_failed_makefile(&mut self, name: &str, keep_going: bool) {
        let Some(f) = self.files.lookup(name) else { return };
        match self.files.get_mut(f).deferred_error.take() {
            Some(msg) => self.events.push(Event::Error(msg)),
            None => {
                let keep = self.opts.keep_going;
                self.opts.keep_going = keep_going;
                self.complain(f);
                self.opts.keep_going = keep;
            }
        }
        // Reported now: the goal phase (under -k) does not complain about it again, as make.
        self.files.get_mut(f).no_diag = false;
        if !keep_going {
            self.die();
        }
    }

    /// Starts the second phase on the same file database (after remaking makefiles without a
    /// restart, as make does): new goals and options, file states kept.
    pub fn start_goals(
        &mut self,
        goals: &[(String, bool)],
        opts: PlanOptions,
    ) {
        self.opts = opts;
        self.goals.clear();
        self.status = Status::None;
        self.remade = false;
        self.blocked = false;
        self.events.clear();
        if goals.is_empty() {
            if let Some(g) = self.db.default_goal() {
                let file = self.files.enter(&g);
                self.goals.push(Goal {
                    file,
                    changed: false,
                    started: Vec::new(),
                    dontcare: false,
                });
            }
        }
        for (g, dontcare) in goals {
            let file = self.files.enter(g);
            self.goals.push(Goal {
                file,
                changed: false,
                started: Vec::new(),
                dontcare: *dontcare,
            });
        }
    }

    /// Stop starting jobs (make's die()): prints `Waiting for unfinished jobs....` when some run.
    pub(crate) fn die(&mut self) {
        if self.status < Status::Failed {
            self.status = Status::Failed;
        }
        if !self.dying {
            self.dying = true;
        }
        if !self.running.is_empty() && !self.waiting_printed {
            self.waiting_printed = true;
            self.events
                .push(Event::Error("*** Waiting for unfinished jobs....".into()));
        }
    }

    /// A fatal signal arrived: start nothing more, and print no `Waiting for unfinished jobs`.
    pub fn interrupt(&mut self) {
        self.waiting_printed = true;
        self.dying = true;
        if self.status < Status::Failed {
            self.status = Status::Failed;
        }
    }

    fn delete_targets_of(&mut self, fid: FileId) {
        for (path, before) in self.deletable_targets(fid) {
            self.events.push(Event::DeleteTarget { path, before });
        }
    }

    pub(crate) fn alloc_job_id(&mut self) -> JobId {
        self.next_id += 1;
        JobId(self.next_id)
    }
}

/// Splits a `VPATH`/`GPATH` value on blanks and colons.
pub(crate) fn split_path_list(s: &str) -> Vec<String> {
    s.split(|c: char| c == ':' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}
