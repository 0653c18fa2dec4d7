//! The contents of small output files sent along with a result ([`InlineFile`]): a client then
//! writes a one-line output without a request of its own per file.

use rmake_proto::exec::{InlineFile, INLINE_FILE_MAX, INLINE_TOTAL_MAX};
use rmake_proto::OutputFile;

use rmake_cas::BlobStore;

/// The contents of the UTF-8 files among `outputs` of at most [`INLINE_FILE_MAX`] bytes, up to
/// [`INLINE_TOTAL_MAX`] in all, each blob once. A blob that cannot be read is left out: the
/// client fetches it as any other. Blocks (reads the store).
pub fn contents(store: &dyn BlobStore, outputs: &[OutputFile]) -> Vec<InlineFile> {
    let mut out: Vec<InlineFile> = Vec::new();
    let mut total = 0u64;
    for f in outputs {
        let size = f.digest.size;
        if size > INLINE_FILE_MAX || total + size > INLINE_TOTAL_MAX {
            continue;
        }
        if out.iter().any(|i| i.digest == f.digest) {
            continue;
        }
        let data = match store.get(&f.digest) {
            Ok(Some(d)) => d,
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!(digest = %f.digest, error = %e, "output not inlined");
                continue;
            }
        };
        if let Ok(text) = String::from_utf8(data) {
            total += size;
            out.push(InlineFile {
                digest: f.digest,
                text,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmake_cas::{Digest, MemoryStore};

    fn out(path: &str, d: Digest) -> OutputFile {
        OutputFile {
            path: path.into(),
            digest: d,
            executable: false,
        }
    }

    fn put(store: &MemoryStore, data: &[u8]) -> Digest {
        let d = Digest::of(data);
        store.put(&d, data).unwrap();
        d
    }

    #[test]
    fn small_text_is_inlined_once_binary_big_and_missing_are_not() {
        let store = MemoryStore::new();
        let hello = put(&store, b"hello\n");
        let binary = put(&store, &[0xff, 0xfe, 0x00]);
        let big = put(&store, &vec![b'x'; INLINE_FILE_MAX as usize + 1]);
        let missing = Digest::of(b"not stored");
        let outputs = [
            out("a", hello),
            out("b", binary),
            out("c", big),
            out("d", missing),
            out("e", hello),
        ];
        let got = contents(&store, &outputs);
        assert_eq!(
            got,
            vec![InlineFile {
                digest: hello,
                text: "hello\n".into()
            }]
        );
    }

    #[test]
    fn the_total_is_bounded() {
        let store = MemoryStore::new();
        let n = (INLINE_TOTAL_MAX / INLINE_FILE_MAX) as usize + 2;
        let outputs: Vec<OutputFile> = (0..n)
            .map(|i| {
                let mut data = vec![b'a' + i as u8; INLINE_FILE_MAX as usize];
                data[0] = b'0' + i as u8;
                out(&format!("f{i}"), put(&store, &data))
            })
            .collect();
        let got = contents(&store, &outputs);
        assert_eq!(got.len() as u64, INLINE_TOTAL_MAX / INLINE_FILE_MAX);
        assert!(got.iter().map(|f| f.text.len() as u64).sum::<u64>() <= INLINE_TOTAL_MAX);
    }
}
