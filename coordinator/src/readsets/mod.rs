//! The shared action cache keyed by what recipes read (see `docs/caching.md`): results live in
//! the [`ActionCache`] under `read_set_key(pre_key, read set)`; under each `pre_key` the
//! [`lists`] keep the read sets seen so far. A lookup is a hit only when every entry of one of
//! them has the same digest in this action's [`view::View`]. [`explain`] says why one misses.
//!
//! Methods block (sled, the blob store, flattening trees): async callers use `spawn_blocking`.

mod codec;
pub mod explain;
pub mod lists;
pub mod trees;
pub mod view;

use std::sync::Arc;

use rmake_cas::Digest;
use rmake_proto::exec::{read_set_key, ActionSpec, ExplainResponse};
use rmake_proto::{ActionKey, ActionResult, OutputFile};

use crate::action_cache::ActionCache;
use crate::error::StoreError;
use crate::meta::Meta;

use lists::{ReadSet, StoredSet, TargetRecord};
use trees::TreeViews;
use view::View;

/// Largest read set stored: a recipe that read more is not cached (its set would cost more
/// to check than the cache saves).
pub const MAX_READS: usize = 100_000;

/// A cache hit: the key the result is stored under, and the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// `read_set_key(pre_key, the matching read set)`.
    pub key: ActionKey,
    /// The stored result.
    pub result: ActionResult,
}

/// Why a result was not stored (the action still succeeded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotStored {
    /// The worker could not record every read.
    ReadsIncomplete,
    /// More reads than [`MAX_READS`].
    TooManyReads(usize),
}

/// Lookups, stores and explanations over the action cache, the read-set lists and the LRU of
/// flattened trees.
#[derive(Debug, Clone)]
pub struct ReadSetCache {
    actions: ActionCache,
    meta: Arc<Meta>,
    trees: Arc<TreeViews>,
}

/// The spec as a target record keeps it: without its tree.
fn bare(spec: &ActionSpec) -> ActionSpec {
    ActionSpec {
        input_root: Digest::of(b""),
        inputs: Vec::new(),
        timeout_secs: None,
        ..spec.clone()
    }
}

impl ReadSetCache {
    /// A cache storing results in `actions` and lists in `meta`, flattening trees from `trees`.
    pub fn new(actions: ActionCache, meta: Arc<Meta>, trees: Arc<TreeViews>) -> ReadSetCache {
        ReadSetCache {
            actions,
            meta,
            trees,
        }
    }

    /// The contents of the small output files among `outputs`, sent with a result (see
    /// [`crate::inline`]). Blocks.
    pub fn inline(&self, outputs: &[OutputFile]) -> Vec<rmake_proto::exec::InlineFile> {
        crate::inline::contents(self.actions.store().as_ref(), outputs)
    }

    /// The LRU of flattened trees.
    pub fn trees(&self) -> &TreeViews {
        &self.trees
    }

    /// The view of `spec`: its `input_root` flattened (from the LRU) with `inputs` on top.
    pub fn view(&self, spec: &ActionSpec) -> Result<View, StoreError> {
        Ok(View::new(self.trees.get(&spec.input_root)?, &spec.inputs))
    }

    /// The stored result this action may reuse, if any. A tree that cannot be flattened (a
    /// directory node is not stored) is a miss: the action's inputs are checked next anyway.
    pub fn lookup(
        &self,
        spec: &ActionSpec,
        prereqs: &[OutputFile],
    ) -> Result<Option<Hit>, StoreError> {
        let pre_key = spec.pre_key(prereqs);
        let sets = lists::read_sets(self.meta.read_sets(), &pre_key)?;
        if sets.is_empty() {
            return Ok(None);
        }
        let view = match self.view(spec) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(%pre_key, root = %spec.input_root, error = %e, "input tree unreadable; cache miss");
                return Ok(None);
            }
        };
        for set in sets.iter().filter(|s| view.matches(&s.entries)) {
            if let Some(result) = self.actions.lookup(&set.key)? {
                return Ok(Some(Hit {
                    key: set.key,
                    result,
                }));
            }
        }
        Ok(None)
    }

    /// Stores the successful result of a cacheable action under the key of what it read, and
    /// records the read set and the target. Returns the key, or why it was not stored.
    pub fn store(
        &self,
        spec: &ActionSpec,
        prereqs: &[OutputFile],
        result: &ActionResult,
    ) -> Result<Result<ActionKey, NotStored>, StoreError> {
        if !result.reads_complete {
            return Ok(Err(NotStored::ReadsIncomplete));
        }
        if result.read_paths.len() > MAX_READS {
            return Ok(Err(NotStored::TooManyReads(result.read_paths.len())));
        }
        let pre_key = spec.pre_key(prereqs);
        let set: ReadSet = self.view(spec)?.entries(&result.read_paths);
        let key = read_set_key(&pre_key, &set);
        self.actions.insert(&key, result)?;
        // After the result, so a lookup that finds the set finds the result too. The result of
        // a set pushed out can no longer be found: it goes too.
        for old in lists::add_read_set(self.meta.read_sets(), &pre_key, set)? {
            self.actions.remove(&old.key)?;
        }
        if let Some(first) = spec.outputs.first() {
            let rec = TargetRecord {
                pre_key,
                spec: bare(spec),
                prereqs: prereqs.to_vec(),
            };
            lists::add_target_record(self.meta.targets(), first, rec)?;
        }
        Ok(Ok(key))
    }

    /// Why this action would miss (or that it would hit), from the nearest stored entry.
    pub fn explain(
        &self,
        spec: &ActionSpec,
        prereqs: &[OutputFile],
    ) -> Result<ExplainResponse, StoreError> {
        let pre_key = spec.pre_key(prereqs);
        let sets = lists::read_sets(self.meta.read_sets(), &pre_key)?;
        if !sets.is_empty() {
            return self.explain_read_sets(spec, &sets);
        }
        let records = match spec.outputs.first() {
            Some(first) => lists::target_records(self.meta.targets(), first)?,
            None => Vec::new(),
        };
        let nearest = records
            .iter()
            .map(|r| explain::spec_reasons(r, spec, prereqs))
            // `min_by_key` keeps the first of equals: the most recent.
            .min_by_key(Vec::len);
        let reasons = match nearest {
            None => vec!["no earlier build of this target in the cache".to_string()],
            Some(r) if r.is_empty() => vec![
                "the cached entries of this action were dropped (the timeout alone differs, or \
                 the read sets were pushed out)"
                    .to_string(),
            ],
            Some(r) => r,
        };
        Ok(ExplainResponse {
            hit: false,
            reasons,
        })
    }

    /// Explains against the read sets under the action's own `pre_key`: the one with the
    /// fewest mismatching entries, and those entries.
    fn explain_read_sets(
        &self,
        spec: &ActionSpec,
        sets: &[StoredSet],
    ) -> Result<ExplainResponse, StoreError> {
        let view = match self.view(spec) {
            Ok(v) => v,
            Err(e) => {
                return Ok(ExplainResponse {
                    hit: false,
                    reasons: vec![format!(
                        "its input tree {} cannot be read on the coordinator: {e}",
                        spec.input_root
                    )],
                })
            }
        };
        let mut evicted = false;
        for set in sets.iter().filter(|s| view.matches(&s.entries)) {
            if self.actions.lookup(&set.key)?.is_some() {
                return Ok(ExplainResponse {
                    hit: true,
                    reasons: Vec::new(),
                });
            }
            evicted = true;
        }
        if evicted {
            return Ok(ExplainResponse {
                hit: false,
                reasons: vec!["the cached result's outputs were evicted from the store".to_string()],
            });
        }
        let nearest = sets
            .iter()
            .map(|s| view.mismatches(&s.entries))
            .min_by_key(Vec::len)
            .unwrap_or_default();
        let reasons = nearest
            .into_iter()
            .map(|e| explain::entry_reason(e, view.digest(&e.path)))
            .collect();
        Ok(ExplainResponse {
            hit: false,
            reasons,
        })
    }
}
