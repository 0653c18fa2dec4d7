//! `Digest`: the SHA-256 hash and byte length that name a blob, and an incremental `Hasher`.
//!
//! A digest prints and parses as `<64 lowercase hex>/<size>` and is serialised (serde) as that
//! same string, so it reads the same in URLs, JSON and logs.

use std::fmt;
use std::io;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// The name of a blob: the SHA-256 of its bytes and their count.
///
/// The size is part of the name so that a store can refuse an over-long upload early and a
/// reader knows how much to expect before it starts.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// SHA-256 of the blob's bytes.
    pub hash: [u8; 32],
    /// Length of the blob in bytes.
    pub size: u64,
}

/// SHA-256 of the empty string.
const EMPTY_HASH: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

impl Digest {
    /// The digest of the empty blob.
    pub const EMPTY: Digest = Digest {
        hash: EMPTY_HASH,
        size: 0,
    };

    /// Hashes `data` in one go.
    pub fn of(data: &[u8]) -> Digest {
        let mut h = Hasher::new();
        h.update(data);
        h.finish()
    }

    /// Hashes everything `reader` yields, with a bounded buffer.
    pub fn of_reader(reader: &mut dyn io::Read) -> io::Result<Digest> {
        let mut h = Hasher::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            h.update(&buf[..n]);
        }
        Ok(h.finish())
    }

    /// The hash as 64 lowercase hex characters.
    pub fn hex(&self) -> String {
        hex::encode(self.hash)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 64];
        // Encoding 32 bytes into 64 always succeeds.
        if hex::encode_to_slice(self.hash, &mut buf).is_err() {
            return Err(fmt::Error);
        }
        let s = std::str::from_utf8(&buf).map_err(|_| fmt::Error)?;
        write!(f, "{s}/{}", self.size)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {input:?}: {reason} (expected <64 hex digits>/<size>)")]
pub struct DigestParseError {
    /// The text that failed to parse (cut to 100 characters).
    pub input: String,
    /// What was wrong with it.
    pub reason: &'static str,
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Digest, DigestParseError> {
        let err = |reason| DigestParseError {
            input: s.chars().take(100).collect(),
            reason,
        };
        let (hex_part, size_part) = s.split_once('/').ok_or_else(|| err("missing '/'"))?;
        if hex_part.len() != 64 {
            return Err(err("hash is not 64 hex digits"));
        }
        // Only lowercase is canonical; accepting both would give one blob two names.
        if !hex_part
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(err("hash is not lowercase hex"));
        }
        let mut hash = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut hash).map_err(|_| err("hash is not hex"))?;
        if size_part.is_empty()
            || !size_part.bytes().all(|b| b.is_ascii_digit())
            || (size_part.len() > 1 && size_part.starts_with('0'))
        {
            return Err(err("size is not a decimal number"));
        }
        let size = size_part
            .parse::<u64>()
            .map_err(|_| err("size is out of range"))?;
        Ok(Digest { hash, size })
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a digest string <hex>/<size>")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Digest, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// Incremental SHA-256 that also counts bytes, yielding a [`Digest`].
///
/// Implements [`io::Write`] so it can be the sink of `io::copy`.
#[derive(Clone, Default)]
pub struct Hasher {
    sha: Sha256,
    len: u64,
}

impl Hasher {
    /// A hasher that has seen no bytes.
    pub fn new() -> Hasher {
        Hasher::default()
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.sha.update(data);
        self.len += data.len() as u64;
    }

    /// Number of bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no bytes were fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        Digest {
            hash: self.sha.finalize().into(),
            size: self.len,
        }
    }
}

impl io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_digest_matches_sha256_of_nothing() {
        assert_eq!(Digest::of(b""), Digest::EMPTY);
        assert_eq!(
            Digest::EMPTY.to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/0"
        );
    }

    #[test]
    fn known_vector_abc() {
        let d = Digest::of(b"abc");
        assert_eq!(
            d.hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.size, 3);
    }

    #[test]
    fn incremental_equals_one_shot() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let mut h = Hasher::new();
        for chunk in data.chunks(999) {
            h.update(chunk);
        }
        assert_eq!(h.len(), data.len() as u64);
        assert_eq!(h.finish(), Digest::of(&data));
        assert_eq!(
            Digest::of_reader(&mut &data[..]).ok(),
            Some(Digest::of(&data))
        );
    }

    #[test]
    fn display_parse_round_trip() {
        let d = Digest::of(b"hello");
        let s = d.to_string();
        assert_eq!(s.parse::<Digest>(), Ok(d));
    }

    #[test]
    fn parse_rejects_bad_input() {
        let good = Digest::of(b"x").hex();
        for bad in [
            "".to_string(),
            good.clone(),
            format!("{good}/"),
            format!("{good}/-1"),
            format!("{good}/+1"),
            format!("{good}/01"),
            format!("{good}/18446744073709551616"),
            format!("{}/1", good.to_uppercase()),
            format!("{}/1", &good[..63]),
            format!("{good}0/1"),
            format!("{}g/1", &good[..63]),
            format!("{good}/1/2"),
        ] {
            assert!(bad.parse::<Digest>().is_err(), "accepted {bad:?}");
        }
        assert!(format!("{good}/18446744073709551615")
            .parse::<Digest>()
            .is_ok());
    }

    #[test]
    fn serde_as_string() {
        let d = Digest::of(b"hello");
        let json = serde_json::to_string(&d).unwrap_or_default();
        assert_eq!(json, format!("\"{d}\""));
        let back: Digest = serde_json::from_str(&json).unwrap_or(Digest::EMPTY);
        assert_eq!(back, d);
        assert!(serde_json::from_str::<Digest>("\"nope\"").is_err());
        assert!(serde_json::from_str::<Digest>("42").is_err());
    }
}
