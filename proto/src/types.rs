//! Request and response bodies of the JSON control endpoints, and the error body.

use serde::{Deserialize, Serialize};

use rmake_cas::Digest;

/// Default limits the coordinator enforces and the client splits its requests by.
pub mod limits {
    /// Most digests in one find-missing, batch-download or pin request.
    pub const MAX_BATCH_DIGESTS: usize = 10_000;
    /// Most bytes in one batch upload or download body.
    pub const MAX_BATCH_BYTES: u64 = 16 * 1024 * 1024;
    /// Largest blob accepted in a batch (larger ones go through the single-blob endpoint).
    pub const MAX_BATCH_BLOB: u64 = 1024 * 1024;
    /// Most bytes in a JSON request body.
    pub const MAX_JSON_BYTES: usize = 4 * 1024 * 1024;
}

/// `POST /v1/find-missing` request: which of these blobs does the coordinator lack?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindMissingRequest {
    /// Digests to check, in any order; duplicates are allowed.
    pub digests: Vec<Digest>,
}

/// `POST /v1/find-missing` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindMissingResponse {
    /// The requested digests that are not stored, in request order, without duplicates.
    pub missing: Vec<Digest>,
}

/// `POST /v1/blobs:batch-download` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchDownloadRequest {
    /// Digests to fetch; the response has one frame for each, in this order.
    pub digests: Vec<Digest>,
}

/// One blob of a batch upload that was not stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedBlob {
    /// The digest the frame claimed.
    pub digest: Digest,
    /// Machine-readable reason, e.g. `digest_mismatch` or `insufficient_storage`.
    pub code: String,
    /// Human-readable reason.
    pub error: String,
}

/// `POST /v1/blobs:batch-upload` response.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BatchUploadResponse {
    /// Blobs now stored (newly or already), in frame order.
    pub stored: Vec<Digest>,
    /// Blobs refused, with the reason; nothing was stored for them.
    pub rejected: Vec<RejectedBlob>,
}

/// The name of a build, as chosen by whoever pins blobs for it (the scheduler or a client).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BuildId(pub String);

impl BuildId {
    /// Longest accepted build id, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Whether the id is short, starts with a letter or digit, and is made of `[A-Za-z0-9._-]`
    /// only (it goes in URLs).
    pub fn is_valid(&self) -> bool {
        self.0.len() <= Self::MAX_LEN
            && self
                .0
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    }
}

impl std::fmt::Display for BuildId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `POST /v1/pins` request: keep these blobs from eviction while the build lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinRequest {
    /// The build that holds the lease; pinning again adds blobs and renews the lease.
    pub build_id: BuildId,
    /// Blobs to pin (may be empty to only renew).
    #[serde(default)]
    pub digests: Vec<Digest>,
    /// Lease length in seconds; the pins vanish if not renewed in time. Capped by the server.
    pub ttl_secs: u64,
}

/// `POST /v1/pins` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinResponse {
    /// Requested blobs that are not stored (and so were not pinned), in request order.
    pub missing: Vec<Digest>,
    /// The lease length actually granted, in seconds.
    pub ttl_secs: u64,
}

/// `GET /healthz` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthResponse {
    /// Always `"ok"` when the service answers.
    pub status: String,
}

/// `GET /v1/status` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResponse {
    /// Version of the coordinator.
    pub version: String,
    /// Blobs stored.
    pub blob_count: u64,
    /// Bytes of stored blobs.
    pub blob_bytes: u64,
    /// The size cap in bytes (eviction starts above it).
    pub max_cache_bytes: u64,
    /// Blobs evicted since start.
    pub evictions: u64,
    /// Bytes evicted since start.
    pub evicted_bytes: u64,
    /// Entries in the action cache.
    pub action_cache_entries: u64,
    /// Builds holding pins right now.
    pub pinned_builds: u64,
    /// Distinct blobs pinned right now.
    pub pinned_blobs: u64,
    /// Seconds since the coordinator started.
    pub uptime_secs: u64,
}

/// The body of every error response: `{"error": "...", "code": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Human-readable message.
    pub error: String,
    /// Machine-readable code (`not_found`, `digest_mismatch`, `unauthorized`, ...).
    pub code: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_missing_json_shape() {
        let d = Digest::of(b"x");
        let json =
            serde_json::to_value(FindMissingRequest { digests: vec![d] }).unwrap_or_default();
        assert_eq!(json, serde_json::json!({ "digests": [d.to_string()] }));
        let bad = serde_json::from_str::<FindMissingRequest>(r#"{"digests":[],"extra":1}"#);
        assert!(bad.is_err(), "unknown fields are refused");
    }

    #[test]
    fn build_id_validity() {
        assert!(BuildId("build-1.a_b".into()).is_valid());
        for bad in ["", "a/b", "a b", "..", ".x", &"x".repeat(129)] {
            assert!(!BuildId(bad.into()).is_valid(), "{bad:?}");
        }
    }
}
