//! Why an action misses the cache, in words for users: the entries of the nearest read set
//! whose digests changed, or, when nothing is stored under the action's `pre_key`, what differs
//! from the nearest stored action of the same target (recipe lines, variables, prerequisites,
//! platform, shell, working directory).

use std::collections::BTreeMap;

use rmake_proto::exec::{ActionSpec, ReadEntry};
use rmake_proto::OutputFile;

use super::lists::TargetRecord;

/// Longest piece of a recipe line quoted in a reason.
const QUOTE_MAX: usize = 160;

/// What one mismatching read entry means.
pub fn entry_reason(stored: &ReadEntry, now: Option<rmake_cas::Digest>) -> String {
    let path = &stored.path;
    if path.ends_with('/') {
        return match (stored.digest, now) {
            (Some(_), None) => format!("directory it listed is gone: {path}"),
            (None, Some(_)) => format!("directory it looked for appeared: {path}"),
            _ => format!("directory listing changed: {path}"),
        };
    }
    match (stored.digest, now) {
        (Some(_), None) => format!("file it read is gone: {path}"),
        (None, Some(_)) => format!("file it looked for appeared: {path}"),
        _ => format!("file it read changed: {path}"),
    }
}

fn quote(s: &str) -> String {
    if s.chars().count() <= QUOTE_MAX {
        return s.to_string();
    }
    let cut: String = s.chars().take(QUOTE_MAX).collect();
    format!("{cut}…")
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

fn dir_name(d: &str) -> &str {
    if d.is_empty() {
        "."
    } else {
        d
    }
}

/// What differs between a stored action of the target and this one, field by field (empty if
/// nothing the `pre_key` covers differs).
pub fn spec_reasons(old: &TargetRecord, spec: &ActionSpec, prereqs: &[OutputFile]) -> Vec<String> {
    let mut out = Vec::new();
    let o = &old.spec;
    let n = o.lines.len().max(spec.lines.len());
    for i in 0..n {
        let no = i + 1;
        match (o.lines.get(i), spec.lines.get(i)) {
            (Some(a), Some(b)) if a.command != b.command => out.push(format!(
                "recipe line {no} changed: {} -> {}",
                quote(&a.command),
                quote(&b.command)
            )),
            (Some(a), Some(b)) if a.ignore_errors != b.ignore_errors => out.push(format!(
                "recipe line {no} changed: errors ignored {} -> {}",
                on_off(a.ignore_errors),
                on_off(b.ignore_errors)
            )),
            (Some(a), None) => out.push(format!("recipe line {no} removed: {}", quote(&a.command))),
            (None, Some(b)) => out.push(format!("recipe line {no} added: {}", quote(&b.command))),
            _ => {}
        }
    }
    if o.oneshell != spec.oneshell {
        out.push(format!(
            ".ONESHELL changed: {} -> {}",
            on_off(o.oneshell),
            on_off(spec.oneshell)
        ));
    }
    if o.shell != spec.shell {
        out.push(format!("shell changed: {} -> {}", o.shell, spec.shell));
    }
    if o.shell_flags != spec.shell_flags {
        out.push(format!(
            "shell flags changed: {} -> {}",
            o.shell_flags, spec.shell_flags
        ));
    }
    // Variables by name only: their values may be secrets.
    let old_env: BTreeMap<&str, &str> = o
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let new_env: BTreeMap<&str, &str> = spec
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for (k, v) in &new_env {
        match old_env.get(k) {
            None => out.push(format!("variable {k} added")),
            Some(ov) if ov != v => out.push(format!("variable {k} changed")),
            _ => {}
        }
    }
    for k in old_env.keys().filter(|k| !new_env.contains_key(*k)) {
        out.push(format!("variable {k} removed"));
    }
    if o.working_dir != spec.working_dir {
        out.push(format!(
            "working directory changed: {} -> {}",
            dir_name(&o.working_dir),
            dir_name(&spec.working_dir)
        ));
    }
    if o.outputs != spec.outputs {
        out.push(format!(
            "targets changed: {} -> {}",
            o.outputs.join(" "),
            spec.outputs.join(" ")
        ));
    }
    for (k, v) in &spec.platform {
        match o.platform.get(k) {
            None => out.push(format!("platform property {k} added: {v}")),
            Some(ov) if ov != v => out.push(format!("platform property {k} changed: {ov} -> {v}")),
            _ => {}
        }
    }
    for k in o
        .platform
        .keys()
        .filter(|k| !spec.platform.contains_key(*k))
    {
        out.push(format!("platform property {k} removed"));
    }
    out.extend(prereq_reasons(&old.prereqs, prereqs));
    out
}

fn prereq_reasons(old: &[OutputFile], new: &[OutputFile]) -> Vec<String> {
    let mut out = Vec::new();
    let old_by: BTreeMap<&str, &OutputFile> = old.iter().map(|f| (f.path.as_str(), f)).collect();
    let new_by: BTreeMap<&str, &OutputFile> = new.iter().map(|f| (f.path.as_str(), f)).collect();
    // In the action's order, as make lists them.
    for f in new {
        match old_by.get(f.path.as_str()) {
            None => out.push(format!("prerequisite added: {}", f.path)),
            Some(o) if *o != f => out.push(format!("prerequisite changed: {}", f.path)),
            _ => {}
        }
    }
    for f in old.iter().filter(|f| !new_by.contains_key(f.path.as_str())) {
        out.push(format!("prerequisite removed: {}", f.path));
    }
    if out.is_empty() && old != new {
        out.push("prerequisites reordered".to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmake_cas::Digest;
    use rmake_proto::exec::CommandLine;

    fn spec(lines: &[&str], env: &[(&str, &str)]) -> ActionSpec {
        ActionSpec {
            input_root: Digest::of(b""),
            inputs: vec![],
            working_dir: String::new(),
            lines: lines
                .iter()
                .map(|c| CommandLine {
                    command: c.to_string(),
                    ignore_errors: false,
                })
                .collect(),
            oneshell: false,
            shell: "/bin/sh".into(),
            shell_flags: "-c".into(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            outputs: vec!["a.o".into()],
            platform: Default::default(),
            timeout_secs: None,
        }
    }

    fn pre(path: &str, text: &str) -> OutputFile {
        OutputFile {
            path: path.into(),
            digest: Digest::of(text.as_bytes()),
            executable: false,
        }
    }

    #[test]
    fn names_each_difference() {
        let old_spec = spec(
            &["echo", "cc -O2 -c a.c"],
            &[("CFLAGS", "-O2"), ("OLD", "1")],
        );
        let old = TargetRecord {
            pre_key: old_spec.pre_key(&[]),
            spec: old_spec,
            prereqs: vec![pre("a.c", "1"), pre("a.h", "1")],
        };
        let mut new = spec(
            &["echo", "cc -O3 -c a.c", "strip a.o"],
            &[("CFLAGS", "-O3"), ("NEW", "1")],
        );
        new.platform.insert("toolchain".into(), "gcc-13".into());
        new.working_dir = "sub".into();
        let got = spec_reasons(&old, &new, &[pre("a.c", "2"), pre("b.h", "1")]);
        assert_eq!(
            got,
            [
                "recipe line 2 changed: cc -O2 -c a.c -> cc -O3 -c a.c",
                "recipe line 3 added: strip a.o",
                "variable CFLAGS changed",
                "variable NEW added",
                "variable OLD removed",
                "working directory changed: . -> sub",
                "platform property toolchain added: gcc-13",
                "prerequisite changed: a.c",
                "prerequisite added: b.h",
                "prerequisite removed: a.h",
            ]
        );
        let same = spec_reasons(&old, &old.spec, &old.prereqs);
        assert!(same.is_empty(), "{same:?}");
        let swapped = vec![pre("a.h", "1"), pre("a.c", "1")];
        assert_eq!(
            spec_reasons(&old, &old.spec, &swapped),
            ["prerequisites reordered"]
        );
    }

    #[test]
    fn read_entries_in_words() {
        let e = |p: &str, d: Option<&[u8]>| ReadEntry {
            path: p.into(),
            digest: d.map(Digest::of),
        };
        let x = Some(Digest::of(b"x"));
        assert_eq!(
            entry_reason(&e("inc/a.h", Some(b"a")), x),
            "file it read changed: inc/a.h"
        );
        assert_eq!(
            entry_reason(&e("inc/a.h", Some(b"a")), None),
            "file it read is gone: inc/a.h"
        );
        assert_eq!(
            entry_reason(&e("src/", Some(b"a")), x),
            "directory listing changed: src/"
        );
    }
}
