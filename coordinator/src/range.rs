//! Parsing of the HTTP `Range` header for blob downloads (one range of bytes).
//!
//! Following RFC 9110: a header that is not a single well-formed `bytes=` range is ignored
//! (the whole blob is sent); a well-formed range that lies outside the blob is a 416.

use crate::error::ApiError;

/// Which bytes to send: `start..start+len` of the blob, and whether that is a partial answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: u64,
    /// Number of bytes.
    pub len: u64,
    /// `true` for a 206 answer.
    pub partial: bool,
}

/// Resolves an optional `Range` header against a blob of `size` bytes.
pub fn resolve(header: Option<&[u8]>, size: u64) -> Result<Span, ApiError> {
    let whole = Span {
        start: 0,
        len: size,
        partial: false,
    };
    let Some(text) = header.and_then(|h| std::str::from_utf8(h).ok()) else {
        return Ok(whole);
    };
    let Some(spec) = text.trim().strip_prefix("bytes=") else {
        return Ok(whole);
    };
    if spec.contains(',') {
        // Multiple ranges are allowed to be answered with the whole blob.
        return Ok(whole);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(whole);
    };
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let unsatisfiable = ApiError::RangeNotSatisfiable { size };
    match (first.trim(), last.trim()) {
        ("", suffix) => {
            let Some(n) = num(suffix) else {
                return Ok(whole);
            };
            if n == 0 || size == 0 {
                return Err(unsatisfiable);
            }
            let n = n.min(size);
            Ok(Span {
                start: size - n,
                len: n,
                partial: true,
            })
        }
        (a, "") => {
            let Some(a) = num(a) else { return Ok(whole) };
            if a >= size {
                return Err(unsatisfiable);
            }
            Ok(Span {
                start: a,
                len: size - a,
                partial: true,
            })
        }
        (a, b) => {
            let (Some(a), Some(b)) = (num(a), num(b)) else {
                return Ok(whole);
            };
            if b < a {
                return Ok(whole);
            }
            if a >= size {
                return Err(unsatisfiable);
            }
            let end = b.min(size - 1);
            Ok(Span {
                start: a,
                len: end - a + 1,
                partial: true,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(h: &str, size: u64) -> Result<(u64, u64, bool), u64> {
        match resolve(Some(h.as_bytes()), size) {
            Ok(s) => Ok((s.start, s.len, s.partial)),
            Err(ApiError::RangeNotSatisfiable { size }) => Err(size),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn forms() {
        assert_eq!(r("bytes=0-9", 100), Ok((0, 10, true)));
        assert_eq!(r("bytes=90-200", 100), Ok((90, 10, true)));
        assert_eq!(r("bytes=50-", 100), Ok((50, 50, true)));
        assert_eq!(r("bytes=-10", 100), Ok((90, 10, true)));
        assert_eq!(r("bytes=-1000", 100), Ok((0, 100, true)));
        assert_eq!(r("bytes=99-99", 100), Ok((99, 1, true)));
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        assert_eq!(r("bytes=100-", 100), Err(100));
        assert_eq!(r("bytes=100-200", 100), Err(100));
        assert_eq!(r("bytes=-0", 100), Err(100));
        assert_eq!(r("bytes=0-", 0), Err(0));
        assert_eq!(r("bytes=-5", 0), Err(0));
        for ignored in [
            "items=0-1",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=0-1,5-6",
            "bytes=",
            "bytes=-",
            "bytes=+1-2",
        ] {
            assert_eq!(r(ignored, 100), Ok((0, 100, false)), "{ignored}");
        }
        assert_eq!(
            resolve(None, 7).ok(),
            Some(Span {
                start: 0,
                len: 7,
                partial: false
            })
        );
        assert_eq!(
            resolve(Some(&[0xff]), 7).ok(),
            Some(Span {
                start: 0,
                len: 7,
                partial: false
            })
        );
    }

    #[test]
    fn any_header_gives_a_span_inside_the_blob_or_416() {
        let parts = [
            "bytes=",
            "-",
            "0",
            "1",
            "99",
            "100",
            "18446744073709551615",
            "18446744073709551616",
            ",",
            " ",
            "a",
            "=",
        ];
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let n = next() % 6;
            let h: String = (0..n)
                .map(|_| parts[(next() % parts.len() as u64) as usize])
                .collect();
            let size = [0, 1, 100, u64::MAX][(next() % 4) as usize];
            match resolve(Some(h.as_bytes()), size) {
                Ok(s) => {
                    assert!(
                        s.start.checked_add(s.len).is_some_and(|end| end <= size),
                        "{h:?} {size}"
                    );
                    assert!(s.partial || (s.start == 0 && s.len == size));
                    assert!(!s.partial || s.len > 0);
                }
                Err(ApiError::RangeNotSatisfiable { size: got }) => assert_eq!(got, size),
                Err(e) => panic!("{h:?}: {e}"),
            }
        }
    }
}
