//! A `Host` over the real file system rooted at one directory, shared by the differential language
//! tests (`tests/lang.rs`) and the `load` example; plus make's way of printing a load error.

use rmake_makefile::{Error, Host, Mtime, ShellResult};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The real file system under one directory (tests run in parallel, so no chdir).
pub(crate) struct DirHost {
    /// The directory relative paths start from.
    pub(crate) dir: PathBuf,
    /// What `$(info)` and friends printed to standard output.
    pub(crate) out: String,
    /// What went to standard error (warnings, `$(shell)` stderr).
    pub(crate) err: String,
}

impl DirHost {
    /// A host whose relative paths (and shell commands) start from `dir`.
    pub(crate) fn new(dir: &Path) -> DirHost {
        DirHost {
            dir: dir.to_path_buf(),
            out: String::new(),
            err: String::new(),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        if p.starts_with('/') {
            PathBuf::from(p)
        } else {
            self.dir.join(p)
        }
    }
}

impl Host for DirHost {
    fn read_file(&mut self, path: &str) -> io::Result<String> {
        fs::read_to_string(self.path(path))
    }
    fn mtime(&mut self, path: &str) -> Option<Mtime> {
        let m = fs::metadata(self.path(path)).ok()?;
        let t = m
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        Some(Mtime(t.as_nanos() as i128))
    }
    fn is_dir(&mut self, path: &str) -> bool {
        self.path(path).is_dir()
    }
    fn list_dir(&mut self, dir: &str) -> io::Result<Vec<String>> {
        let mut v = Vec::new();
        for e in fs::read_dir(self.path(dir))? {
            v.push(e?.file_name().to_string_lossy().into_owned());
        }
        Ok(v)
    }
    fn shell(
        &mut self,
        cmd: &str,
        shell: &str,
        flags: &str,
        env: &[(String, String)],
    ) -> ShellResult {
        let mut c = Command::new(shell);
        for f in flags.split_whitespace() {
            c.arg(f);
        }
        c.arg(cmd)
            .current_dir(&self.dir)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)));
        match c.output() {
            Ok(o) => {
                self.err.push_str(&String::from_utf8_lossy(&o.stderr));
                ShellResult {
                    stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                    status: o.status.code().unwrap_or(2),
                }
            }
            Err(_) => ShellResult {
                stdout: String::new(),
                status: 127,
            },
        }
    }
    fn write_file(&mut self, path: &str, text: &str, append: bool) -> io::Result<()> {
        use std::io::Write;
        let mut f = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(self.path(path))?;
        f.write_all(text.as_bytes())
    }
    fn touch(&mut self, path: &str) -> io::Result<()> {
        let f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(path))?;
        f.set_modified(std::time::SystemTime::now())
    }
    fn stdout(&mut self, text: &str) {
        self.out.push_str(text);
    }
    fn stderr(&mut self, text: &str) {
        self.err.push_str(text);
    }
    fn cwd(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }
    fn realpath(&mut self, path: &str) -> Option<String> {
        fs::canonicalize(self.path(path))
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    }
}

/// A load error as make prints it (with the `make:` prefix when it has no location), newline included.
pub(crate) fn error_text(e: &Error) -> String {
    if e.loc.is_some() {
        format!("{e}\n")
    } else {
        format!("make: {e}\n")
    }
}
