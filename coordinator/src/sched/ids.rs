//! Fresh ids for builds (`b-…`), workers (`w-…`) and leases (`l-…`): 16 hex digits that do not
//! repeat within a process and are hard to guess across restarts.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// `<prefix>-<16 hex digits>`: SHA-256 over a process counter, the clock and a random seed.
pub(crate) fn fresh(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // `RandomState` is seeded from the OS's randomness.
    let mut seed = RandomState::new().build_hasher();
    seed.write_u64(n);
    let mut h = Sha256::new();
    h.update(n.to_le_bytes());
    h.update(nanos.to_le_bytes());
    h.update(seed.finish().to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    let digest = h.finalize();
    format!("{prefix}-{}", hex::encode(&digest[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_hex_and_distinct() {
        let a = fresh("b");
        let b = fresh("b");
        assert_ne!(a, b);
        assert_eq!(a.len(), 2 + 16);
        assert!(a.starts_with("b-"));
        assert!(a[2..].bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
