//! Deterministic pseudo-random bytes (xorshift64) for tests and benchmarks, so that runs and
//! failures reproduce. Not for anything that needs real randomness.

/// Fills `buf` with the byte stream of `seed`: the same seed always gives the same bytes, and a
/// shorter buffer gets a prefix of a longer one's.
pub fn fill(buf: &mut [u8], seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// `len` bytes of the stream of `seed` (see [`fill`]).
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    fill(&mut out, seed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_prefix_other_seed_other_bytes() {
        let long = bytes(7, 100);
        assert_eq!(bytes(7, 13), long[..13]);
        assert_ne!(bytes(8, 100), long);
        assert!(bytes(1, 0).is_empty());
    }
}
