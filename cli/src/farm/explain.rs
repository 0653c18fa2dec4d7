//! `--explain`: why the actions of the last farm build missed the cache. When an action misses,
//! the client asks the coordinator at once (before the new result is stored) what differs from
//! the nearest entry it holds; the build records those answers per tree under the cache dir, and
//! `rmake-remote --explain [TARGET…]` prints them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use rmake_proto::exec::{ExecuteRequest, ExplainRequest};
use rmake_proto::CoordinatorClient;

use crate::args::Config;
use crate::farm::{settings, tree};
use crate::runner::Prefix;

/// An action of a build that did not come from the cache, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Miss {
    /// The target, as make names it.
    pub target: String,
    /// Its outputs, relative to the tree's root.
    pub outputs: Vec<String>,
    /// What differed from the nearest cache entry, in words (empty: unknown).
    pub reasons: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    root: String,
    misses: Vec<Miss>,
}

fn record_path(cache_dir: &Path, root: &Path) -> PathBuf {
    cache_dir.join("last-build").join(format!("{}.json", tree::root_key(root)))
}

/// Asks the coordinator why `req` is not in the cache (called when it was queued, so before its
/// own result is stored).
pub async fn why_missed(client: CoordinatorClient, target: String, req: ExecuteRequest) -> Vec<String> {
    if req.skip_cache_lookup {
        return vec!["-B: the cache was not consulted".to_string()];
    }
    let ask = ExplainRequest { target, spec: req.spec, prereqs: req.prereqs };
    match client.explain(&ask).await {
        // Another build stored it meanwhile.
        Ok(ans) if ans.hit => vec!["stored by another build while this one ran it".to_string()],
        Ok(ans) => ans.reasons,
        Err(e) => vec![format!("the coordinator could not say ({e})")],
    }
}

/// Records the misses of the build of the tree at `root` (a build with no remote action keeps
/// the previous record).
pub fn save(cache_dir: &Path, root: &Path, misses: &[Miss]) -> anyhow::Result<()> {
    let path = record_path(cache_dir, root);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let rec = Record { root: root.display().to_string(), misses: misses.to_vec() };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(&rec)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

/// Runs `--explain`: for the named target (`--explain=T`) and the goals given, else every miss of
/// the last build, prints `target: reason` lines. Exit status 0, or 2 when there is no record.
pub fn run(cfg: &Config, prefix: &Prefix) -> ExitCode {
    match explain(cfg) {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: *** --explain: {e:#}.  Stop.", prefix.0);
            ExitCode::from(2)
        }
    }
}

fn explain(cfg: &Config) -> anyhow::Result<Vec<String>> {
    let cwd = std::env::current_dir()?;
    let root = tree::find_root(&cwd);
    let map = tree::PathMap::new(root.clone(), &cwd);
    let (s, _) = settings::resolve(cfg, &root)?;
    let path = record_path(&s.cache_dir, &root);
    let text = std::fs::read(&path).with_context(|| format!("no farm build of {} is recorded", root.display()))?;
    let rec: Record = serde_json::from_slice(&text).context("the build record is damaged")?;
    let mut wanted: Vec<String> = cfg.goals.clone();
    if let Some(t) = cfg.explain.as_ref().filter(|t| !t.is_empty()) {
        wanted.push(t.clone());
    }
    let wanted_rel: Vec<String> = wanted.iter().filter_map(|w| map.to_rel(w)).collect();
    let mut lines = Vec::new();
    for m in &rec.misses {
        let picked = wanted.is_empty() || wanted.contains(&m.target) || m.outputs.iter().any(|o| wanted_rel.contains(o));
        if !picked {
            continue;
        }
        if m.reasons.is_empty() {
            lines.push(format!("{}: missed the cache", m.target));
        }
        lines.extend(m.reasons.iter().map(|r| format!("{}: {r}", m.target)));
    }
    if lines.is_empty() {
        let what = if wanted.is_empty() { "every action".to_string() } else { wanted.join(" ") };
        lines.push(format!("{what}: came from the cache or did not run in the last farm build"));
    }
    Ok(lines)
}
