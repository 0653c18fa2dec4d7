//! `--explain`: why the actions of the last farm build missed the cache. Each build records the
//! actions that ran (under the cache dir, per tree); `--explain` asks the coordinator to compare
//! each with the nearest entry it holds and prints what differs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use rmake_proto::exec::{ExecuteRequest, ExplainRequest};
use rmake_proto::CoordinatorClient;

use crate::args::Config;
use crate::farm::embedded::Embedded;
use crate::farm::{settings, tree};
use crate::runner::Prefix;

/// An action of a build that did not come from the cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Miss {
    /// The target, as make names it.
    pub target: String,
    /// What was submitted.
    pub request: ExecuteRequest,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    root: String,
    misses: Vec<Miss>,
}

fn record_path(cache_dir: &Path, root: &Path) -> PathBuf {
    cache_dir.join("last-build").join(format!("{}.json", tree::root_key(root)))
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

/// Runs `--explain`: for the named target (`--explain=T`), else the goals given, else every miss
/// of the last build, prints `target: reason` lines. Exit status 0, or 2 when nothing can be
/// explained.
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
    let picked: Vec<&Miss> = rec
        .misses
        .iter()
        .filter(|m| {
            wanted.is_empty()
                || wanted.contains(&m.target)
                || m.request.spec.outputs.iter().any(|o| wanted_rel.contains(o))
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let (url, embedded) = match &s.coordinator {
            Some(u) => (u.clone(), None),
            None => {
                let e = Embedded::start(&s.cache_dir, 1).await?;
                (e.url.clone(), Some(e))
            }
        };
        let client = CoordinatorClient::new(&url, s.token.clone())?;
        let mut lines = Vec::new();
        if picked.is_empty() {
            let what = if wanted.is_empty() { "no action".to_string() } else { wanted.join(" ") };
            lines.push(format!("{what}: ran from the cache or not at all in the last build"));
        }
        for m in picked {
            let req = ExplainRequest {
                target: m.target.clone(),
                spec: m.request.spec.clone(),
                prereqs: m.request.prereqs.clone(),
            };
            match client.explain(&req).await {
                Ok(ans) if ans.hit => lines.push(format!("{}: would be a cache hit now", m.target)),
                Ok(ans) if ans.reasons.is_empty() => lines.push(format!("{}: missed the cache", m.target)),
                Ok(ans) => lines.extend(ans.reasons.iter().map(|r| format!("{}: {r}", m.target))),
                Err(e) => lines.push(format!("{}: cannot explain: {e}", m.target)),
            }
        }
        if let Some(e) = embedded {
            e.stop().await;
        }
        Ok(lines)
    })
}
