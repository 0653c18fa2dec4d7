//! Which jobs run on the farm and which on the client, and the environment a remote recipe
//! gets (see docs/farm.md, "Classes of targets").

use std::collections::HashSet;

use rmake_makefile::build::{Job, JobGraph};

use crate::farm::tree::PathMap;

/// The special targets that override the classification.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `.RMAKE_LOCAL`: run on the client.
    pub local: HashSet<String>,
    /// `.RMAKE_REMOTE`: run on the farm even if it would run locally.
    pub remote: HashSet<String>,
    /// `.RMAKE_NOCACHE`: run on the farm, never cache.
    pub nocache: HashSet<String>,
}

/// Where a job runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// On the client, with local mode's executor.
    Local(&'static str),
    /// On the farm; `cacheable` unless `.RMAKE_NOCACHE` (or forced remote from a volatile class).
    Remote {
        /// Store its result in the action cache.
        cacheable: bool,
    },
}

/// Decides where `job` runs.
pub fn classify(job: &Job, graph: &JobGraph, map: &PathMap, ov: &Overrides) -> Class {
    let named = |set: &HashSet<String>| graph.targets.iter().any(|t| set.contains(t));
    let cacheable = !named(&ov.nocache);
    let local = local_reason(job, graph, map, ov);
    match local {
        Some(_) if named(&ov.remote) => Class::Remote { cacheable: false },
        Some(why) => Class::Local(why),
        None => Class::Remote { cacheable },
    }
}

fn local_reason(job: &Job, graph: &JobGraph, map: &PathMap, ov: &Overrides) -> Option<&'static str> {
    if graph.phony {
        return Some("phony");
    }
    if graph.targets.iter().any(|t| ov.local.contains(t)) {
        return Some(".RMAKE_LOCAL");
    }
    if graph.prereqs.iter().any(|p| p.phony || p.force) {
        return Some("volatile");
    }
    if job.lines.iter().any(|l| l.recursive) {
        return Some("recursive");
    }
    if job.lines.iter().any(|l| !l.execute) {
        return Some("not executed");
    }
    if job.lines.is_empty() {
        return Some("empty recipe");
    }
    let root = map.root.to_string_lossy();
    if root.len() > 1 && job.lines.iter().any(|l| l.command.contains(root.as_ref())) {
        return Some("names the tree's absolute path");
    }
    let outside = |n: &String| map.to_rel(n).is_none();
    if graph.targets.iter().any(outside)
        || graph.prereqs.iter().any(|p| outside(&p.name))
        || graph.generated_closure.iter().any(outside)
    {
        return Some("outside the tree");
    }
    None
}

/// Variables that belong to the client's session, not to the recipe: left out of a remote
/// action (the worker sets its own) when the makefile did not change them.
const SESSION_VARS: &[&str] = &[
    "PWD", "OLDPWD", "SHLVL", "_", "HOME", "PATH", "USER", "LOGNAME", "MAIL", "HOSTNAME", "TERM",
    "COLORTERM", "DISPLAY", "WAYLAND_DISPLAY", "LS_COLORS", "TMPDIR", "SHELL", "EDITOR", "PAGER",
    "OPTERR", "OPTIND", "PS1", "PS2", "PS4", "HISTFILE", "HISTSIZE",
    "DBUS_SESSION_BUS_ADDRESS", "GPG_AGENT_INFO", "MOTD_SHOWN", "CARGO_TARGET_DIR",
];
const SESSION_PREFIXES: &[&str] = &["SSH_", "XDG_", "TERM_", "RMAKE_", "CARGO_", "RUSTUP_", "GIT_"];

/// The environment of a remote recipe: the job's, minus session variables inherited unchanged,
/// with the jobserver and `-j` taken out of `MAKEFLAGS`; sorted by name.
pub fn remote_env(job: &Job) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = job
        .env
        .iter()
        .filter(|(k, v)| {
            let session = SESSION_VARS.contains(&k.as_str())
                || SESSION_PREFIXES.iter().any(|p| k.starts_with(p));
            !(session && std::env::var(k).is_ok_and(|cur| &cur == v))
        })
        .map(|(k, v)| {
            if k == "MAKEFLAGS" || k == "MFLAGS" {
                (k.clone(), strip_jobs(v))
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    env.sort();
    env.dedup_by(|a, b| a.0 == b.0);
    env
}

/// MAKEFLAGS without `-jN` and `--jobserver-auth=…`: they say how the client schedules, not
/// what a recipe does, and would split the cache between `-j4` and `-j8` builds.
fn strip_jobs(flags: &str) -> String {
    let words: Vec<&str> = flags
        .split(' ')
        .filter(|w| !(w.starts_with("--jobserver") || (w.starts_with("-j") && w[2..].bytes().all(|b| b.is_ascii_digit()))))
        .collect();
    let mut s = words.join(" ");
    // A first word of single-letter flags loses its `j`: `kj` -> `k`.
    if let Some(first) = s.split(' ').next() {
        if !first.starts_with('-') && first.contains('j') {
            let fixed: String = first.chars().filter(|&c| c != 'j').collect();
            s = format!("{fixed}{}", &s[first.len()..]);
        }
    }
    s.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makeflags_lose_the_jobserver() {
        assert_eq!(strip_jobs("kj -j4 --jobserver-auth=3,4"), "k");
        assert_eq!(strip_jobs(" -j8 --jobserver-auth=fifo:/x -- X=1"), "-- X=1");
        assert_eq!(strip_jobs("s"), "s");
    }
}
