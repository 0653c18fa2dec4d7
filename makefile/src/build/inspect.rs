//! Read-only views of the target graph for an executor that runs jobs elsewhere: what a running
//! job makes, what it depends on (transitively), and which files recipes generate.

use std::collections::HashSet;

use crate::build::file::{FileId, Time};
use crate::build::job::JobId;
use crate::build::plan::Plan;

/// One direct prerequisite of a job's target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrereqView {
    /// The file's name as the Plan knows it (after directory search).
    pub name: String,
    /// Listed in `.PHONY`.
    pub phony: bool,
    /// FORCE-style: a target with no recipe and no prerequisites that is not a file, so
    /// whatever depends on it is remade every run.
    pub force: bool,
    /// An order-only prerequisite.
    pub order_only: bool,
}

/// The graph around one running job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobGraph {
    /// The files the recipe makes: the target, then the other targets of a grouped or
    /// multi-target pattern rule.
    pub targets: Vec<String>,
    /// The target is phony.
    pub phony: bool,
    /// Its direct prerequisites, in order.
    pub prereqs: Vec<PrereqView>,
    /// Every file with a recipe that the target depends on, directly or not (order-only too),
    /// phony ones excluded, each once, nearest first.
    pub generated_closure: Vec<String>,
    /// Every prerequisite file, direct or not, without a recipe (sources).
    pub source_closure: Vec<String>,
}

impl Plan {
    /// The graph around the running job `id` (`None` once it has finished).
    pub fn job_graph(&self, id: JobId) -> Option<JobGraph> {
        let &fid = self.running.get(&id)?;
        let file = self.files.get(fid);
        let mut targets = vec![file.name.clone()];
        targets.extend(file.also_make.iter().map(|&o| self.files.get(o).name.clone()));
        let prereqs = file
            .deps
            .iter()
            .map(|d| {
                let p = self.files.get(d.file);
                PrereqView {
                    name: p.name.clone(),
                    phony: p.phony,
                    force: !p.phony
                        && p.cmds.is_none()
                        && p.deps.is_empty()
                        && p.is_target
                        && matches!(p.mtime_before_update, Some(Time::Missing) | None)
                        && matches!(p.mtime, Some(Time::Missing | Time::New) | None),
                    order_only: d.order_only,
                }
            })
            .collect();
        let (generated_closure, source_closure) = self.closure(fid);
        Some(JobGraph {
            targets,
            phony: file.phony,
            prereqs,
            generated_closure,
            source_closure,
        })
    }

    fn closure(&self, root: FileId) -> (Vec<String>, Vec<String>) {
        let mut seen: HashSet<FileId> = HashSet::new();
        seen.insert(root);
        let mut queue: std::collections::VecDeque<FileId> = self.deps_of(root).collect();
        let (mut generated, mut sources) = (Vec::new(), Vec::new());
        while let Some(id) = queue.pop_front() {
            if !seen.insert(id) {
                continue;
            }
            let f = self.files.get(id);
            if !f.phony {
                if f.cmds.is_some() {
                    generated.push(f.name.clone());
                    generated.extend(f.also_make.iter().map(|&o| self.files.get(o).name.clone()));
                } else {
                    sources.push(f.name.clone());
                }
            }
            queue.extend(self.deps_of(id));
        }
        (generated, sources)
    }

    /// Prerequisites of `id` and of the other entries of its double-colon chain.
    fn deps_of(&self, id: FileId) -> impl Iterator<Item = FileId> + '_ {
        let head = self.files.get(id).dc_head.unwrap_or(id);
        let mut chain = vec![head];
        let mut cur = head;
        while let Some(next) = self.files.get(cur).dc_next {
            if chain.contains(&next) {
                break;
            }
            chain.push(next);
            cur = next;
        }
        chain
            .into_iter()
            .flat_map(move |c| self.files.get(c).deps.iter().map(|d| d.file))
    }

    /// Every non-phony file the Plan knows a recipe for so far (explicit rules, and files whose
    /// implicit rule was already found).
    pub fn generated_files(&self) -> Vec<String> {
        self.files
            .all
            .iter()
            .filter(|f| f.cmds.is_some() && !f.phony)
            .map(|f| f.name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::build::{Plan, PlanOptions};
    use crate::db::{Database, LoadOptions};
    use crate::host::MemHost;

    #[test]
    fn graph_of_a_link_job() {
        let mut host = MemHost::new();
        host.add_file(
            "Makefile",
            "prog: main.o lib.a | out FORCE\n\tcc -o $@ $^\nlib.a: a.o\n\tar rcs $@ $^\n%.o: %.c\n\tcc -c $<\nout:\n\tmkdir out\nFORCE:\n.PHONY: out\n",
        );
        for f in ["main.c", "a.c"] {
            host.add_file(f, "");
        }
        let lo = LoadOptions { no_builtin_rules: true, ..LoadOptions::default() };
        let (db, _) = Database::load(&mut host, &lo).expect("loads");
        let opts = PlanOptions { always_make: true, ..PlanOptions::default() };
        let mut plan = Plan::new(db, &mut host, &[("prog".to_string(), false)], opts);
        let mut graph = None;
        for _ in 0..100 {
            plan.poll(&mut host);
            while let Some(job) = plan.next_job(&mut host) {
                if job.target == "prog" {
                    graph = plan.job_graph(job.id);
                }
                let id = job.id;
                plan.job_finished(id, crate::build::JobResult::Success, &mut host);
            }
            if graph.is_some() || plan.is_done() {
                break;
            }
        }
        let g = graph.expect("prog's job ran");
        assert_eq!(g.targets, vec!["prog"]);
        assert!(!g.phony);
        let names: Vec<&str> = g.prereqs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["main.o", "lib.a", "out", "FORCE"]);
        assert!(g.prereqs[2].phony && g.prereqs[2].order_only);
        assert!(g.prereqs[3].force && !g.prereqs[3].phony);
        assert_eq!(g.generated_closure, vec!["main.o", "lib.a", "a.o"]);
        assert_eq!(g.source_closure, vec!["FORCE", "main.c", "a.c"]);
        let gen = plan.generated_files();
        for f in ["prog", "lib.a", "main.o", "a.o"] {
            assert!(gen.iter().any(|g| g == f), "{f} in {gen:?}");
        }
        assert!(!gen.iter().any(|g| g == "out"), "phony is not generated");
    }
}
