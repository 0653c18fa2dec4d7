//! Action-cache types: the key an action is cached under and the result stored for it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use rmake_cas::Digest;

/// The key of an action-cache entry: a SHA-256 computed by the scheduler (see ARCHITECTURE.md,
/// "The action key"). Printed and serialised as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActionKey(pub [u8; 32]);

/// Why a string is not an action key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid action key {input:?}: expected 64 lowercase hex digits")]
pub struct ActionKeyParseError {
    /// The text that failed to parse (cut to 100 characters).
    pub input: String,
}

impl fmt::Display for ActionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ActionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActionKey({self})")
    }
}

impl FromStr for ActionKey {
    type Err = ActionKeyParseError;

    fn from_str(s: &str) -> Result<ActionKey, ActionKeyParseError> {
        let err = || ActionKeyParseError {
            input: s.chars().take(100).collect(),
        };
        // Lowercase only, so one key has one spelling.
        if s.len() != 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(err());
        }
        let mut key = [0u8; 32];
        hex::decode_to_slice(s, &mut key).map_err(|_| err())?;
        Ok(ActionKey(key))
    }
}

impl Serialize for ActionKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ActionKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ActionKey, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One file an action produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputFile {
    /// Path relative to the build root, `/`-separated, never absolute, never with `..`.
    pub path: String,
    /// The file's contents.
    pub digest: Digest,
    /// Whether the file has its executable bit set.
    #[serde(default)]
    pub executable: bool,
}

/// The stdout or stderr of an action: small UTF-8 text inline, anything else as a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LogOutput {
    /// The text itself (used only for valid UTF-8 up to [`LogOutput::INLINE_MAX`] bytes).
    Inline {
        /// The output.
        text: String,
    },
    /// The output is stored as a blob.
    Blob {
        /// The blob holding the bytes.
        digest: Digest,
    },
}

impl LogOutput {
    /// Largest output kept inline, in bytes.
    pub const INLINE_MAX: usize = 4096;

    /// Nothing was printed.
    pub fn empty() -> LogOutput {
        LogOutput::Inline {
            text: String::new(),
        }
    }

    /// The blob this output refers to, if it is stored as one.
    pub fn digest(&self) -> Option<Digest> {
        match self {
            LogOutput::Inline { .. } => None,
            LogOutput::Blob { digest } => Some(*digest),
        }
    }
}

impl Default for LogOutput {
    fn default() -> LogOutput {
        LogOutput::empty()
    }
}

/// How long the action took, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timings {
    /// Waiting in the queue before a worker leased it.
    #[serde(default)]
    pub queued_ms: u64,
    /// Fetching inputs and building the exec root.
    #[serde(default)]
    pub input_fetch_ms: u64,
    /// Running the recipe.
    #[serde(default)]
    pub execution_ms: u64,
    /// Uploading outputs.
    #[serde(default)]
    pub output_upload_ms: u64,
}

/// Where the action ran; part of the action key, so a result never crosses platforms.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    /// Operating system, as Rust's `std::env::consts::OS` (`linux`).
    pub os: String,
    /// CPU architecture, as `std::env::consts::ARCH` (`x86_64`).
    pub arch: String,
}

impl Platform {
    /// The platform this program runs on.
    pub fn current() -> Platform {
        Platform {
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
        }
    }
}

/// What an action produced: stored in the action cache under its [`ActionKey`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionResult {
    /// Every file the action wrote, sorted by path.
    pub output_files: Vec<OutputFile>,
    /// What the recipe printed on stdout.
    #[serde(default)]
    pub stdout: LogOutput,
    /// What the recipe printed on stderr.
    #[serde(default)]
    pub stderr: LogOutput,
    /// The recipe's exit code (only successful results are cached, so normally 0).
    pub exit_code: i32,
    /// How long each stage took.
    #[serde(default)]
    pub timings: Timings,
    /// Where it ran.
    #[serde(default)]
    pub platform: Platform,
    /// How stdout and stderr interleave, line by line of the recipe: the client replays the
    /// two streams in this order, each line's echo before its output.
    #[serde(default)]
    pub segments: Vec<Segment>,
    /// Recipe lines that ended unsuccessfully, ignored ones included; when `exit_code` is not
    /// 0 the last one stopped the recipe.
    #[serde(default)]
    pub failures: Vec<LineExit>,
    /// How many recipe lines were started (all of them unless one failed).
    #[serde(default)]
    pub lines_run: u32,
    /// The worker that ran it.
    #[serde(default)]
    pub worker: String,
    /// Paths (relative to the root, sorted) of the inputs the recipe opened or, for
    /// directories, listed, as the worker saw them (inotify on the exec root); `reads_complete`
    /// is false when the recording overflowed or failed.
    #[serde(default)]
    pub read_paths: Vec<String>,
    /// Whether `read_paths` is the whole set.
    #[serde(default)]
    pub reads_complete: bool,
    /// Directories the recipe created (root-relative, sorted), so an empty one comes back too.
    #[serde(default)]
    pub output_dirs: Vec<String>,
}

/// Which output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// The next `len` bytes of `stream` were written while recipe line `line` ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// Index into the recipe's lines (0 for a `.ONESHELL` recipe).
    pub line: u32,
    /// The stream.
    pub stream: Stream,
    /// Bytes.
    pub len: u64,
}

/// A recipe line that exited with a non-zero status or was killed by a signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineExit {
    /// Index into the recipe's lines.
    pub line: u32,
    /// Its exit status, when it exited.
    #[serde(default)]
    pub code: Option<i32>,
    /// The signal that killed it, when one did.
    #[serde(default)]
    pub signal: Option<i32>,
    /// The program could not be started (make's shell-less path): `prog: No such file or
    /// directory`; the client prints it after its program name, as make does. `code` is 127.
    #[serde(default)]
    pub spawn_error: Option<String>,
}

impl ActionResult {
    /// Every blob the result refers to: output files, then stdout and stderr blobs.
    pub fn referenced_blobs(&self) -> Vec<Digest> {
        let mut out: Vec<Digest> = self.output_files.iter().map(|f| f.digest).collect();
        out.extend(self.stdout.digest());
        out.extend(self.stderr.digest());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_key_round_trip_and_rejects() {
        let key = ActionKey([0xab; 32]);
        let s = key.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s.parse::<ActionKey>(), Ok(key));
        assert!(s.to_uppercase().parse::<ActionKey>().is_err());
        assert!(s[..63].parse::<ActionKey>().is_err());
        assert!("zz".repeat(32).parse::<ActionKey>().is_err());
    }

    #[test]
    fn action_result_json_round_trip() {
        let out = Digest::of(b"obj");
        let log = Digest::of(b"warnings");
        let result = ActionResult {
            output_files: vec![OutputFile {
                path: "a.o".into(),
                digest: out,
                executable: false,
            }],
            stdout: LogOutput::Inline {
                text: "cc -c a.c\n".into(),
            },
            stderr: LogOutput::Blob { digest: log },
            exit_code: 0,
            timings: Timings {
                execution_ms: 12,
                ..Timings::default()
            },
            platform: Platform::current(),
            segments: vec![],
            failures: vec![],
            lines_run: 1,
            worker: "w1".into(),
            read_paths: vec!["a.c".into()],
            reads_complete: true,
            output_dirs: vec![],
        };
        let json = serde_json::to_string(&result).unwrap_or_default();
        let back: ActionResult =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
        assert_eq!(back, result);
        assert_eq!(back.referenced_blobs(), vec![out, log]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(v["stdout"]["kind"], "inline");
        assert_eq!(v["stderr"]["digest"], log.to_string());
    }
}
