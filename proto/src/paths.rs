//! The URL paths of the coordinator API, shared by the router and the client.

use rmake_cas::Digest;

use crate::action::ActionKey;
use crate::types::BuildId;

/// Liveness probe (no authentication).
pub const HEALTHZ: &str = "/healthz";
/// Store statistics.
pub const STATUS: &str = "/v1/status";
/// Which of a batch of blobs are missing.
pub const FIND_MISSING: &str = "/v1/find-missing";
/// Upload many small blobs in one framed body.
pub const BATCH_UPLOAD: &str = "/v1/batch/upload";
/// Download many small blobs as one framed body.
pub const BATCH_DOWNLOAD: &str = "/v1/batch/download";
/// Pin blobs for a build.
pub const PINS: &str = "/v1/pins";

/// `/v1/blobs/<hex>/<size>`: one blob, streamed.
pub fn blob(digest: &Digest) -> String {
    format!("/v1/blobs/{}/{}", digest.hex(), digest.size)
}

/// `/v1/actions/<hex key>`: one action-cache entry.
pub fn action(key: &ActionKey) -> String {
    format!("/v1/actions/{key}")
}

/// `/v1/pins/<build id>`: the pins of one build.
pub fn pins_of(build: &BuildId) -> String {
    format!("/v1/pins/{build}")
}
