//! Start-up reconciliation of the blob directory with sled, after a crash or a kill.
//!
//! - a blob file unknown to sled is re-hashed: adopted if it matches its name, removed if not;
//! - a sled blob entry whose file is gone is dropped;
//! - an action-cache entry that refers to a missing blob, or does not decode, is dropped.
//!
//! Temp files of interrupted uploads are removed by the disk store when it opens.

use std::collections::HashSet;
use std::time::UNIX_EPOCH;

use rmake_cas::{BlobStore, Digest};
use rmake_proto::ActionResult;

use crate::error::StoreError;
use crate::meta::Meta;

/// What reconciliation changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Unknown blobs verified and adopted.
    pub adopted: u64,
    /// Unknown blobs that failed verification and were removed.
    pub removed_corrupt: u64,
    /// Sled entries dropped because their blob is gone.
    pub dropped_entries: u64,
    /// Action-cache entries dropped.
    pub dropped_actions: u64,
}

/// Brings `meta` and `store` into agreement (blocking; may hash unknown blobs).
pub fn reconcile(store: &dyn BlobStore, meta: &Meta) -> Result<ReconcileReport, StoreError> {
    let mut report = ReconcileReport::default();
    let listed = store.list()?;
    let on_disk: HashSet<Digest> = listed.iter().map(|b| b.digest).collect();
    for (digest, _) in meta.blobs_by_age()? {
        if !on_disk.contains(&digest) {
            meta.remove_blob(&digest)?;
            report.dropped_entries += 1;
        }
    }
    let mut removed = HashSet::new();
    for info in &listed {
        if meta.has_blob(&info.digest)? {
            continue;
        }
        let valid = match store.open_read(&info.digest)? {
            Some(mut r) => Digest::of_reader(&mut r).ok() == Some(info.digest),
            None => false,
        };
        if valid {
            let at = info
                .written_at
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            meta.record_blob(&info.digest, at)?;
            report.adopted += 1;
        } else {
            tracing::warn!(digest = %info.digest, "removing a stored blob that does not match its name");
            store.delete(&info.digest)?;
            removed.insert(info.digest);
            report.removed_corrupt += 1;
        }
    }
    let mut doomed = Vec::new();
    for item in meta.actions() {
        let (key, json) = item?;
        let ok = serde_json::from_slice::<ActionResult>(&json)
            .map(|r| {
                r.referenced_blobs()
                    .iter()
                    .all(|d| on_disk.contains(d) && !removed.contains(d))
            })
            .unwrap_or(false);
        if !ok {
            doomed.push(key);
        }
    }
    for key in doomed {
        if let Ok(k) = <[u8; 32]>::try_from(key.as_ref()) {
            meta.remove_action(&k)?;
            report.dropped_actions += 1;
        }
    }
    meta.flush()?;
    if report != ReconcileReport::default() {
        tracing::info!(?report, "reconciled the blob store with its metadata");
    }
    Ok(report)
}
