//! Dependency fences: the pure crates never pull in a runtime, a network stack or a database.
//!
//! `makefile` and `cas` are used by every other crate; if either grew a dependency on tokio, axum,
//! reqwest, hyper or sled, the language would stop being testable in isolation and the layering of
//! ARCHITECTURE.md would be gone. This walks the resolved graph of normal (not dev) dependencies.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

const FORBIDDEN: &[&str] = &["tokio", "axum", "reqwest", "hyper", "sled"];

/// The names of every crate reachable from `root` through normal dependencies.
fn normal_closure(meta: &serde_json::Value, root: &str) -> BTreeSet<String> {
    let packages = meta["packages"].as_array().expect("packages");
    let name_of: HashMap<&str, &str> = packages
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or(""),
                p["name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let nodes = meta["resolve"]["nodes"].as_array().expect("resolve.nodes");
    let by_id: HashMap<&str, &serde_json::Value> = nodes
        .iter()
        .map(|n| (n["id"].as_str().unwrap_or(""), n))
        .collect();
    let root_id = name_of
        .iter()
        .find(|(_, name)| **name == root)
        .map(|(id, _)| *id)
        .unwrap_or_else(|| panic!("package {root} not in the workspace"));
    let mut seen = BTreeSet::new();
    let mut stack = vec![root_id];
    while let Some(id) = stack.pop() {
        let Some(node) = by_id.get(id) else { continue };
        for dep in node["deps"].as_array().into_iter().flatten() {
            let normal = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null());
            let dep_id = dep["pkg"].as_str().unwrap_or("");
            if normal && seen.insert(name_of.get(dep_id).copied().unwrap_or("").to_string()) {
                stack.push(dep_id);
            }
        }
    }
    seen
}

#[test]
fn pure_crates_depend_on_no_runtime_network_or_database() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata json");
    for krate in ["rmake-makefile", "rmake-cas"] {
        let closure = normal_closure(&meta, krate);
        let bad: Vec<_> = closure
            .iter()
            .filter(|n| FORBIDDEN.contains(&n.as_str()))
            .collect();
        assert!(
            bad.is_empty(),
            "{krate} must stay pure but depends on {bad:?}"
        );
    }
    // The walk itself must see through to runtimes: the coordinator does depend on them.
    let server = normal_closure(&meta, "rmake-coordinator");
    assert!(
        server.contains("tokio") && server.contains("rmake-cas"),
        "closure walk is broken: {server:?}"
    );
}
