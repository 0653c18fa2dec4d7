//! `ActionCache`: results of actions stored under their action key, served only while every
//! blob they refer to is still stored.
//!
//! Only the coordinator writes entries ([`ActionCache::insert`], called by the scheduler for
//! results of actions it scheduled); the HTTP API offers lookups only. Methods block.

use std::sync::Arc;

use rmake_proto::{ActionKey, ActionResult};

use crate::blobs::BlobService;
use crate::error::StoreError;

/// The action cache, on top of the blob service.
#[derive(Debug, Clone)]
pub struct ActionCache {
    blobs: Arc<BlobService>,
}

impl ActionCache {
    /// An action cache whose entries live in the blob service's metadata.
    pub fn new(blobs: Arc<BlobService>) -> ActionCache {
        ActionCache { blobs }
    }

    /// The blob store the results' outputs live in.
    pub fn store(&self) -> &Arc<dyn rmake_cas::BlobStore> {
        self.blobs.store()
    }

    /// Stores `result` under `key`, replacing any previous entry. Refused if the result refers
    /// to a blob that is not stored (an entry must never point at nothing).
    pub fn insert(&self, key: &ActionKey, result: &ActionResult) -> Result<(), StoreError> {
        let refs = result.referenced_blobs();
        if let Some(example) = self.blobs.first_missing(&refs)? {
            let present = self.blobs.store().has_many(&refs)?;
            let count = present.iter().filter(|p| !**p).count();
            return Err(StoreError::MissingOutputs { count, example });
        }
        let json = serde_json::to_vec(result).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.blobs.meta().put_action(&key.0, &json)?;
        self.blobs.meta().touch(refs);
        Ok(())
    }

    /// The entry for `key`, or `None` on a miss. An entry whose blobs are gone, or that does
    /// not decode, is a miss and is removed. A hit counts as a use of its blobs.
    pub fn lookup(&self, key: &ActionKey) -> Result<Option<ActionResult>, StoreError> {
        let Some(json) = self.blobs.meta().action(&key.0)? else {
            return Ok(None);
        };
        let result: ActionResult = match serde_json::from_slice(&json) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(key = %key, error = %e, "dropping undecodable action-cache entry");
                self.blobs.meta().remove_action(&key.0)?;
                return Ok(None);
            }
        };
        let refs = result.referenced_blobs();
        if let Some(gone) = self.blobs.first_missing(&refs)? {
            tracing::info!(key = %key, missing = %gone, "action-cache entry lost an output blob; dropping it");
            self.blobs.meta().remove_action(&key.0)?;
            return Ok(None);
        }
        self.blobs.meta().touch(refs);
        Ok(Some(result))
    }

    /// Removes an entry; `true` if it existed.
    pub fn remove(&self, key: &ActionKey) -> Result<bool, StoreError> {
        Ok(self.blobs.meta().remove_action(&key.0)?)
    }

    /// Entries stored.
    pub fn len(&self) -> u64 {
        self.blobs.meta().action_count()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
