//! One node of the target graph (make's `struct file`): its prerequisites, recipe, flags and
//! update state, and the dense store of all of them.

use crate::vars::FxHashMap;
use std::sync::Arc;

use crate::db::Recipe;
use crate::host::Mtime;
use crate::loc::Loc;

/// Index of a file in the graph.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct FileId(pub(crate) u32);

/// A file's modification time as make tracks it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Time {
    /// The file does not exist.
    Missing,
    /// `-o`: exists and is older than everything.
    Old,
    /// A real timestamp.
    At(Mtime),
    /// `-W`, or assumed just remade under `-n`/`-q`/`-t`: newer than everything.
    New,
}

impl Time {
    pub(crate) fn from_host(m: Option<Mtime>) -> Time {
        m.map_or(Time::Missing, Time::At)
    }
}

/// A prerequisite edge.
#[derive(Clone, Debug)]
pub(crate) struct Dep {
    pub(crate) file: FileId,
    /// After `|`: updated first, but its time does not matter.
    pub(crate) order_only: bool,
    /// Set during update: the prerequisite changed (`$?`).
    pub(crate) changed: bool,
    /// From `.EXTRA_PREREQS`: not in the automatic variables.
    pub(crate) hidden: bool,
}

/// make's command_state.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum CmdState {
    NotStarted,
    DepsRunning,
    Running,
    Finished,
}

/// make's update_status, ordered by severity.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Status {
    None,
    Success,
    Question,
    Failed,
}

/// The recipe a file will run, and what to report it as.
#[derive(Clone, Debug)]
pub(crate) struct Cmds {
    pub(crate) recipe: Arc<Recipe>,
    /// The rule's location (for `<builtin>` recipes: file `<builtin>`).
    pub(crate) loc: Loc,
}

/// One target or prerequisite (one entry of a double-colon chain).
#[derive(Clone, Debug)]
pub(crate) struct File {
    /// The name used now: the vpath-found path once found and kept.
    pub(crate) name: String,
    /// The name as written in the makefile.
    pub(crate) hname: String,
    pub(crate) deps: Vec<Dep>,
    /// Explicit rules whose prerequisites still need second expansion, in make's order (the recipe
    /// rule first): (index in `Database::rules`, how many entries of `deps` come before its own).
    pub(crate) pending_expansion: Vec<(usize, usize)>,
    pub(crate) cmds: Option<Cmds>,
    /// `$*` from a static pattern rule or pattern rule.
    pub(crate) stem: Option<String>,
    /// Grouped targets and other targets of the same pattern rule.
    pub(crate) also_make: Vec<FileId>,
    /// For a double-colon chain: the next entry (make's `prev`).
    pub(crate) dc_next: Option<FileId>,
    /// For any double-colon entry: the chain's head.
    pub(crate) dc_head: Option<FileId>,
    /// Pattern-rule target pattern that produced this file's recipe (`.PRECIOUS: %.o`).
    pub(crate) pattern_target: Option<String>,
    pub(crate) is_target: bool,
    pub(crate) phony: bool,
    pub(crate) precious: bool,
    pub(crate) intermediate: bool,
    pub(crate) secondary: bool,
    pub(crate) dontcare: bool,
    pub(crate) tried_implicit: bool,
    pub(crate) updating: bool,
    pub(crate) updated: bool,
    pub(crate) no_diag: bool,
    /// vpath search is disabled (the file is being remade in the current directory).
    pub(crate) ignore_vpath: bool,
    pub(crate) considered: u32,
    pub(crate) state: CmdState,
    pub(crate) status: Status,
    /// Cached modification time; `None` when it must be asked again.
    pub(crate) mtime: Option<Time>,
    pub(crate) mtime_before_update: Option<Time>,
    pub(crate) parent: Option<FileId>,
    /// This file was handed out as a job and is running.
    pub(crate) running_job: bool,
    /// Its recipe is `.DEFAULT`'s (then `$<` is the target itself).
    pub(crate) from_default: bool,
    /// The file's `dontcare` when its job started (make's child->dontcare).
    pub(crate) job_dontcare: bool,
    /// While remaking makefiles, a failed recipe's message is kept here instead of printed.
    pub(crate) deferred_error: Option<String>,
    /// Resuming a file whose prerequisites were still being made: the index of the first
    /// prerequisite not yet finished at the last look, and what the finished ones decided.
    /// (make re-walks every prerequisite on every pass; this keeps a pass linear.)
    pub(crate) dep_cursor: usize,
    pub(crate) cursor_must_make: bool,
    pub(crate) cursor_status: Status,
    /// A job with at least one command ran (or the file was touched) for it.
    pub(crate) ran_commands: bool,
}

impl File {
    pub(crate) fn new(name: &str) -> File {
        File {
            name: name.to_string(),
            hname: name.to_string(),
            deps: Vec::new(),
            pending_expansion: Vec::new(),
            cmds: None,
            stem: None,
            also_make: Vec::new(),
            dc_next: None,
            dc_head: None,
            pattern_target: None,
            is_target: false,
            phony: false,
            precious: false,
            intermediate: false,
            secondary: false,
            dontcare: false,
            tried_implicit: false,
            updating: false,
            updated: false,
            no_diag: false,
            ignore_vpath: false,
            considered: 0,
            state: CmdState::NotStarted,
            status: Status::None,
            mtime: None,
            mtime_before_update: None,
            parent: None,
            running_job: false,
            from_default: false,
            dep_cursor: 0,
            cursor_must_make: false,
            cursor_status: Status::Success,
            deferred_error: None,
            job_dontcare: false,
            ran_commands: false,
        }
    }
}

/// All files, by id and by name (the head of a double-colon chain for a name).
#[derive(Default)]
pub(crate) struct Files {
    pub(crate) all: Vec<File>,
    pub(crate) by_name: FxHashMap<String, FileId>,
}

impl Files {
    pub(crate) fn get(&self, id: FileId) -> &File {
        &self.all[id.0 as usize]
    }

    pub(crate) fn get_mut(&mut self, id: FileId) -> &mut File {
        &mut self.all[id.0 as usize]
    }

    pub(crate) fn lookup(&self, name: &str) -> Option<FileId> {
        self.by_name.get(strip_dot_slash(name)).copied()
    }

    /// The file named `name`, created if unknown. Like make, a leading `./` is not part of a name.
    pub(crate) fn enter(&mut self, name: &str) -> FileId {
        let name = strip_dot_slash(name);
        if let Some(id) = self.by_name.get(name) {
            return *id;
        }
        let id = self.push(File::new(name));
        self.by_name.insert(name.to_string(), id);
        id
    }

    /// Adds a file without registering its name (double-colon chain entries after the first).
    pub(crate) fn push(&mut self, f: File) -> FileId {
        let id = FileId(self.all.len() as u32);
        self.all.push(f);
        id
    }
}

/// `name` without leading `./` components (`./a/b` is the file `a/b`; `./` alone stays).
pub(crate) fn strip_dot_slash(name: &str) -> &str {
    let mut n = name;
    while let Some(rest) = n.strip_prefix("./") {
        if rest.is_empty() {
            break;
        }
        n = rest.trim_start_matches('/');
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_slash_is_not_part_of_a_name() {
        assert_eq!(strip_dot_slash("./util/a"), "util/a");
        assert_eq!(strip_dot_slash("././a"), "a");
        assert_eq!(strip_dot_slash("./"), "./");
        assert_eq!(strip_dot_slash("a/./b"), "a/./b");
        let mut f = Files::default();
        let a = f.enter("./x");
        assert_eq!(f.enter("x"), a);
        assert_eq!(f.lookup("./x"), Some(a));
    }
}
