//! The real-filesystem `Host`: files, ns-precision mtimes, directory listings (cached until the
//! build changes the tree), `$(shell)` through the shell, and the process's own stdout/stderr.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::process::{Command, Stdio};
use std::time::UNIX_EPOCH;

use rmake_makefile::host::{Host, Mtime, ShellResult};

/// The machine the client runs on, as the makefile crate sees it.
#[derive(Default)]
pub struct RealHost {
    listings: HashMap<String, Vec<String>>,
    /// `-L`: a symlink's time is the newer of the link's and its target's.
    symlink_times: bool,
    /// While expanding a job's recipe under `-O`: `$(info)`/`$(warning)` text for its block.
    capture: Option<(Vec<u8>, Vec<u8>)>,
}

impl RealHost {
    /// A host over the current directory.
    pub fn new() -> RealHost {
        RealHost::default()
    }

    /// Starts keeping printed text instead of printing it (output sync of a job's expansion).
    pub fn begin_capture(&mut self) {
        self.capture = Some((Vec::new(), Vec::new()));
    }

    /// Stops keeping printed text; returns (stdout, stderr) kept since `begin_capture`.
    pub fn end_capture(&mut self) -> (Vec<u8>, Vec<u8>) {
        self.capture.take().unwrap_or_default()
    }

    /// `-L` (--check-symlink-times).
    pub fn set_symlink_times(&mut self, on: bool) {
        self.symlink_times = on;
    }

    /// Forgets cached directory listings (call after recipes ran: they may have created files).
    pub fn invalidate(&mut self) {
        self.listings.clear();
    }
}

/// The modification time of `path` in ns since the epoch, following symlinks like stat(2).
pub fn file_mtime(path: &str) -> Option<Mtime> {
    let meta = fs::metadata(if path.is_empty() { "." } else { path }).ok()?;
    let t = meta.modified().ok()?;
    let ns = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    Some(Mtime(ns))
}

impl Host for RealHost {
    fn read_file(&mut self, path: &str) -> io::Result<String> {
        let bytes = fs::read(path)?;
        Ok(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    fn mtime(&mut self, path: &str) -> Option<Mtime> {
        let m = file_mtime(path);
        if !self.symlink_times {
            return m;
        }
        let link = fs::symlink_metadata(path).ok().and_then(|l| l.modified().ok()).and_then(|t| {
            t.duration_since(UNIX_EPOCH).ok().map(|d| Mtime(d.as_nanos() as i128))
        });
        match (m, link) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    fn is_dir(&mut self, path: &str) -> bool {
        fs::metadata(if path.is_empty() { "." } else { path }).is_ok_and(|m| m.is_dir())
    }

    fn list_dir(&mut self, dir: &str) -> io::Result<Vec<String>> {
        // "src/" and "src" are one directory: list it once.
        let trimmed = dir.trim_end_matches('/');
        let key = match (dir.is_empty(), trimmed.is_empty()) {
            (true, _) => ".",
            (false, true) => "/",
            (false, false) => trimmed,
        };
        if let Some(v) = self.listings.get(key) {
            return Ok(v.clone());
        }
        let mut names = Vec::new();
        for entry in fs::read_dir(key)? {
            let entry = entry?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        self.listings.insert(key.to_string(), names.clone());
        Ok(names)
    }

    fn shell(&mut self, cmd: &str, shell: &str, flags: &str, env: &[(String, String)]) -> ShellResult {
        let _ = io::stdout().flush();
        let mut c = Command::new(shell);
        for f in flags.split_whitespace() {
            c.arg(f);
        }
        c.arg(cmd);
        c.env_clear();
        c.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c.stdin(Stdio::inherit()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        match c.output() {
            Ok(out) => {
                let status = match out.status.code() {
                    Some(code) => code,
                    None => {
                        use std::os::unix::process::ExitStatusExt;
                        out.status.signal().map_or(127, |s| 128 + s)
                    }
                };
                ShellResult { stdout: String::from_utf8_lossy(&out.stdout).into_owned(), status }
            }
            Err(e) => {
                tracing::debug!(?e, shell, "cannot run $(shell)");
                ShellResult { stdout: String::new(), status: 127 }
            }
        }
    }

    fn write_file(&mut self, path: &str, text: &str, append: bool) -> io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)?;
        f.write_all(text.as_bytes())?;
        self.invalidate();
        Ok(())
    }

    fn touch(&mut self, path: &str) -> io::Result<()> {
        let f = fs::OpenOptions::new().create(true).append(true).open(path);
        self.invalidate();
        f?.set_modified(std::time::SystemTime::now())
    }

    fn stdout(&mut self, text: &str) {
        if let Some((out, _)) = &mut self.capture {
            out.extend_from_slice(text.as_bytes());
            return;
        }
        crate::dirlog::ensure();
        let mut out = io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    fn stderr(&mut self, text: &str) {
        if let Some((_, err)) = &mut self.capture {
            err.extend_from_slice(text.as_bytes());
            return;
        }
        crate::dirlog::ensure();
        let _ = io::stdout().flush();
        let _ = io::stderr().write_all(text.as_bytes());
    }

    fn cwd(&self) -> String {
        std::env::current_dir().map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| ".".into())
    }

    fn realpath(&mut self, path: &str) -> Option<String> {
        fs::canonicalize(path).ok().map(|p| p.to_string_lossy().into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtime_and_listing_and_shell() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.txt");
        fs::write(&p, "x").expect("write");
        let mut h = RealHost::new();
        let ps = p.to_string_lossy().into_owned();
        assert!(h.mtime(&ps).is_some());
        assert!(h.mtime(&format!("{ps}.missing")).is_none());
        let names = h.list_dir(&dir.path().to_string_lossy()).expect("list");
        assert_eq!(names, ["a.txt"]);
        assert_eq!(h.read_file(&ps).expect("read"), "x");
        let r = h.shell("echo hi; exit 3", "/bin/sh", "-c", &[]);
        assert_eq!(r, ShellResult { stdout: "hi\n".into(), status: 3 });
    }
}
