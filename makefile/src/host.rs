//! The `Host` trait: everything outside the language (files, mtimes, `$(shell)`, output), and `MemHost`,
//! an in-memory host for tests.

use std::collections::BTreeMap;
use std::io;

/// A file modification time in nanoseconds since the Unix epoch (ordered, ns precision).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mtime(pub i128);

/// What a `$(shell)` or `!=` command produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShellResult {
    /// Everything the command wrote to its standard output.
    pub stdout: String,
    /// The exit status as make records it in `.SHELLSTATUS` (127 when the shell could not run).
    pub status: i32,
}

/// The world as the language sees it. Paths are relative to the current directory unless absolute.
///
/// The local executor implements it over the real file system and processes; the coordinator over a
/// snapshot; tests with [`MemHost`].
pub trait Host {
    /// The whole text of a file (makefiles, `$(file <x)`).
    fn read_file(&mut self, path: &str) -> io::Result<String>;
    /// The modification time of a file or directory; `None` when it does not exist.
    fn mtime(&mut self, path: &str) -> Option<Mtime>;
    /// Whether `path` is an existing directory.
    fn is_dir(&mut self, path: &str) -> bool;
    /// The entry names of a directory (not `.`/`..`), in any order (used by wildcard and vpath).
    fn list_dir(&mut self, dir: &str) -> io::Result<Vec<String>>;
    /// Run `cmd` as `shell flags cmd` with `env` as the whole environment; standard error passes through.
    fn shell(
        &mut self,
        cmd: &str,
        shell: &str,
        flags: &str,
        env: &[(String, String)],
    ) -> ShellResult;
    /// Write (or append) `text` to a file (`$(file >x,text)`).
    fn write_file(&mut self, path: &str, text: &str, append: bool) -> io::Result<()>;
    /// `-t`: create `path` if missing and set its modification time to now (make's
    /// `touch_file`); an error is the reason opening it failed.
    fn touch(&mut self, path: &str) -> io::Result<()>;
    /// Print to standard output (`$(info)`).
    fn stdout(&mut self, text: &str);
    /// Print to standard error (`$(warning)`, make's warnings).
    fn stderr(&mut self, text: &str);
    /// The absolute current directory (`CURDIR`, `abspath`).
    fn cwd(&self) -> String;
    /// The canonical absolute path with symlinks resolved; `None` when it does not exist.
    fn realpath(&mut self, path: &str) -> Option<String>;
}

/// The signature of a `MemHost` shell: `(command) -> result`.
pub type ShellFn = Box<dyn FnMut(&str) -> ShellResult + Send>;

/// An in-memory [`Host`] for tests: files with mtimes, captured output, and a scripted shell.
pub struct MemHost {
    /// Files by normalised absolute path: (contents, mtime).
    pub files: BTreeMap<String, (String, Mtime)>,
    /// The current directory (absolute).
    pub cwd: String,
    /// Everything printed to standard output.
    pub out: String,
    /// Everything printed to standard error.
    pub err: String,
    /// Commands given to `shell`, in order.
    pub shell_log: Vec<String>,
    /// Answers `shell` calls; by default echoes nothing and exits 0.
    pub shell_fn: ShellFn,
    clock: i128,
}

impl Default for MemHost {
    fn default() -> Self {
        MemHost::new()
    }
}

impl MemHost {
    /// An empty host whose current directory is `/work`.
    pub fn new() -> MemHost {
        MemHost {
            files: BTreeMap::new(),
            cwd: "/work".to_string(),
            out: String::new(),
            err: String::new(),
            shell_log: Vec::new(),
            shell_fn: Box::new(|_| ShellResult::default()),
            clock: 1_000_000_000,
        }
    }

    /// Add (or replace) a file, giving it a newer mtime than every file added before.
    pub fn with_file(mut self, path: &str, text: &str) -> MemHost {
        self.add_file(path, text);
        self
    }

    /// Add (or replace) a file, giving it a newer mtime than every file added before.
    pub fn add_file(&mut self, path: &str, text: &str) {
        self.clock += 1_000_000_000;
        let key = self.abs(path);
        self.files
            .insert(key, (text.to_string(), Mtime(self.clock)));
    }

    /// Normalise `path` to an absolute path without `.`/`..`/double slashes.
    pub fn abs(&self, path: &str) -> String {
        normalize(&self.cwd, path)
    }

    fn dir_exists(&self, abs: &str) -> bool {
        if abs == "/" {
            return true;
        }
        let prefix = format!("{abs}/");
        self.files
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix))
    }
}

impl Host for MemHost {
    fn read_file(&mut self, path: &str) -> io::Result<String> {
        let key = self.abs(path);
        match self.files.get(&key) {
            Some((t, _)) => Ok(t.clone()),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "No such file or directory",
            )),
        }
    }

    fn mtime(&mut self, path: &str) -> Option<Mtime> {
        let key = self.abs(path);
        if let Some((_, m)) = self.files.get(&key) {
            return Some(*m);
        }
        self.dir_exists(&key).then_some(Mtime(0))
    }

    fn is_dir(&mut self, path: &str) -> bool {
        let key = self.abs(path);
        self.dir_exists(&key)
    }

    fn list_dir(&mut self, dir: &str) -> io::Result<Vec<String>> {
        let key = self.abs(dir);
        if !self.dir_exists(&key) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "No such file or directory",
            ));
        }
        let prefix = if key == "/" {
            "/".to_string()
        } else {
            format!("{key}/")
        };
        let mut names: Vec<String> = Vec::new();
        for k in self.files.keys().filter(|k| k.starts_with(&prefix)) {
            let rest = &k[prefix.len()..];
            let name = rest.split('/').next().unwrap_or(rest).to_string();
            if names.last() != Some(&name) {
                names.push(name);
            }
        }
        names.dedup();
        Ok(names)
    }

    fn shell(
        &mut self,
        cmd: &str,
        _shell: &str,
        _flags: &str,
        _env: &[(String, String)],
    ) -> ShellResult {
        self.shell_log.push(cmd.to_string());
        (self.shell_fn)(cmd)
    }

    fn write_file(&mut self, path: &str, text: &str, append: bool) -> io::Result<()> {
        self.clock += 1_000_000_000;
        let key = self.abs(path);
        let clock = self.clock;
        let entry = self
            .files
            .entry(key)
            .or_insert_with(|| (String::new(), Mtime(clock)));
        if !append {
            entry.0.clear();
        }
        entry.0.push_str(text);
        entry.1 = Mtime(clock);
        Ok(())
    }

    fn touch(&mut self, path: &str) -> io::Result<()> {
        let abs = self.abs(path);
        let parent = abs.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        if !parent.is_empty() && !self.dir_exists(parent) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "No such file or directory",
            ));
        }
        self.write_file(path, "", true)
    }

    fn stdout(&mut self, text: &str) {
        self.out.push_str(text);
    }

    fn stderr(&mut self, text: &str) {
        self.err.push_str(text);
    }

    fn cwd(&self) -> String {
        self.cwd.clone()
    }

    fn realpath(&mut self, path: &str) -> Option<String> {
        let key = self.abs(path);
        (self.files.contains_key(&key) || self.dir_exists(&key)).then_some(key)
    }
}

/// Make a path absolute against `cwd` and resolve `.`, `..` and repeated slashes, without the file system.
pub(crate) fn normalize(cwd: &str, path: &str) -> String {
    let full = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{cwd}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in full.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}
