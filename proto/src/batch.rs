//! The framing of batch uploads and downloads: many small blobs in one HTTP body.
//!
//! A body is a plain concatenation of frames, with no header or trailer:
//!
//! ```text
//! frame := hash[32] | size: u64 big-endian | present: u8 (1 or 0) | data[size] if present == 1
//! ```
//!
//! An upload body holds only `present = 1` frames. A download response holds one frame per
//! requested digest, in request order, with `present = 0` (and no data) for a blob the
//! coordinator lacks. 41 bytes of overhead per blob, no escaping, and a reader can check every
//! length before it trusts it.

use bytes::{BufMut, Bytes};

use rmake_cas::Digest;

/// Bytes before a frame's data.
pub const FRAME_HEADER: usize = 32 + 8 + 1;

/// One blob in a batch body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The digest the frame claims (not verified by the decoder).
    pub digest: Digest,
    /// The bytes, or `None` for a blob the sender does not have.
    pub data: Option<Bytes>,
}

/// Why a batch body does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The body ends inside a frame header.
    #[error("batch body truncated in the header of frame {index} (offset {offset})")]
    TruncatedHeader {
        /// Frame number, from 0.
        index: usize,
        /// Byte offset of the frame.
        offset: usize,
    },
    /// The body ends before the data a frame announced.
    #[error("batch frame {index} announces {size} bytes but only {available} remain")]
    TruncatedData {
        /// Frame number, from 0.
        index: usize,
        /// Announced size.
        size: u64,
        /// Bytes left in the body.
        available: usize,
    },
    /// The presence byte is neither 0 nor 1.
    #[error("batch frame {index} has presence byte {flag} (expected 0 or 1)")]
    BadFlag {
        /// Frame number, from 0.
        index: usize,
        /// The byte found.
        flag: u8,
    },
    /// More frames than the reader accepts.
    #[error("batch holds more than {max} frames")]
    TooManyFrames {
        /// The limit.
        max: usize,
    },
}

/// Appends one frame to `out`. `data` must be `None` or hold exactly `digest.size` bytes.
pub fn encode_frame(out: &mut Vec<u8>, digest: &Digest, data: Option<&[u8]>) {
    out.reserve(FRAME_HEADER + data.map_or(0, <[u8]>::len));
    out.put_slice(&digest.hash);
    out.put_u64(digest.size);
    match data {
        Some(d) => {
            out.put_u8(1);
            out.put_slice(d);
        }
        None => out.put_u8(0),
    }
}

/// Encodes an upload body from `(digest, bytes)` pairs.
pub fn encode_upload<'a>(items: impl IntoIterator<Item = (&'a Digest, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (digest, data) in items {
        encode_frame(&mut out, digest, Some(data));
    }
    out
}

/// Splits a batch body into frames without copying the data; at most `max_frames` frames.
pub fn decode(body: &Bytes, max_frames: usize) -> Result<Vec<Frame>, FramingError> {
    let mut frames = Vec::new();
    let mut offset = 0usize;
    while offset < body.len() {
        let index = frames.len();
        if index >= max_frames {
            return Err(FramingError::TooManyFrames { max: max_frames });
        }
        let Some(header) = body.get(offset..offset + FRAME_HEADER) else {
            return Err(FramingError::TruncatedHeader { index, offset });
        };
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&header[..32]);
        let mut size_bytes = [0u8; 8];
        size_bytes.copy_from_slice(&header[32..40]);
        let size = u64::from_be_bytes(size_bytes);
        let flag = header[40];
        let digest = Digest { hash, size };
        offset += FRAME_HEADER;
        let data = match flag {
            0 => None,
            1 => {
                let available = body.len() - offset;
                let len = usize::try_from(size)
                    .ok()
                    .filter(|&n| n <= available)
                    .ok_or(FramingError::TruncatedData {
                        index,
                        size,
                        available,
                    })?;
                let data = body.slice(offset..offset + len);
                offset += len;
                Some(data)
            }
            flag => return Err(FramingError::BadFlag { index, flag }),
        };
        frames.push(Frame { digest, data });
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_missing_and_empty() {
        let a = b"hello".as_slice();
        let da = Digest::of(a);
        let dm = Digest::of(b"missing");
        let mut body = Vec::new();
        encode_frame(&mut body, &da, Some(a));
        encode_frame(&mut body, &dm, None);
        encode_frame(&mut body, &Digest::EMPTY, Some(b""));
        assert_eq!(body.len(), 3 * FRAME_HEADER + 5);
        let frames = decode(&Bytes::from(body), 10).unwrap_or_default();
        assert_eq!(
            frames,
            vec![
                Frame {
                    digest: da,
                    data: Some(Bytes::from_static(b"hello"))
                },
                Frame {
                    digest: dm,
                    data: None
                },
                Frame {
                    digest: Digest::EMPTY,
                    data: Some(Bytes::new())
                },
            ]
        );
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        let d = Digest::of(b"abc");
        let good = Bytes::from(encode_upload([(&d, b"abc".as_slice())]));
        for cut in 1..good.len() {
            assert!(decode(&good.slice(..cut), 10).is_err(), "cut at {cut}");
        }
        let mut huge = Vec::new();
        encode_frame(
            &mut huge,
            &Digest {
                hash: [0; 32],
                size: u64::MAX,
            },
            None,
        );
        huge[40] = 1;
        assert!(matches!(
            decode(&Bytes::from(huge), 10),
            Err(FramingError::TruncatedData { .. })
        ));
        let mut flag = good.to_vec();
        flag[40] = 7;
        assert_eq!(
            decode(&Bytes::from(flag), 10),
            Err(FramingError::BadFlag { index: 0, flag: 7 })
        );
        let two = Bytes::from([good.to_vec(), good.to_vec()].concat());
        assert_eq!(decode(&two, 1), Err(FramingError::TooManyFrames { max: 1 }));
        assert_eq!(decode(&Bytes::new(), 0), Ok(vec![]));
    }

    /// Re-encodes decoded frames: a body that decodes must be exactly its frames.
    fn reencode(frames: &[Frame]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in frames {
            encode_frame(&mut out, &f.digest, f.data.as_deref());
        }
        out
    }

    #[test]
    fn decode_never_panics_on_random_or_mutated_bodies() {
        let blobs: Vec<Vec<u8>> = (0..4u64)
            .map(|i| rmake_cas::testdata::bytes(i, (i * 37) as usize))
            .collect();
        let mut good = Vec::new();
        for (i, b) in blobs.iter().enumerate() {
            let d = Digest::of(b);
            encode_frame(&mut good, &d, (i != 2).then_some(b.as_slice()));
        }
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20_000u64 {
            let body = if round % 4 == 0 {
                // Pure noise, sometimes with a plausible header in front.
                let len = (next() % 200) as usize;
                let mut b = rmake_cas::testdata::bytes(next(), len);
                if round % 8 == 0 && b.len() > FRAME_HEADER {
                    b[32..40].copy_from_slice(&(next() % 64).to_be_bytes());
                    b[40] = (next() % 2) as u8;
                }
                b
            } else {
                let mut m = good.clone();
                for _ in 0..(next() % 4 + 1) {
                    if m.is_empty() {
                        break;
                    }
                    let pos = (next() as usize) % m.len();
                    match next() % 3 {
                        0 => m[pos] = next() as u8,
                        1 => m.truncate(pos),
                        _ => m.insert(pos, next() as u8),
                    }
                }
                m
            };
            let max = (next() % 6) as usize;
            if let Ok(frames) = decode(&Bytes::from(body.clone()), max) {
                assert!(frames.len() <= max);
                assert_eq!(reencode(&frames), body);
            }
        }
    }
}
