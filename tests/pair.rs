//! One source tree in two copies, built by GNU make and by `rmake-remote`, and the comparison of
//! the two runs: exit status, stdout and stderr (lines sorted when the build is parallel) and
//! every file left behind (content, or existence only for compiler output).
//!
//! Both programs run by the name `rmake-remote` from a bin directory at the head of `PATH` (for
//! make, a symlink to `/usr/bin/make`: GNU make names itself after argv[0], so its messages say
//! `rmake-remote: ...` and `rmake-remote[1]: ...` and `$(MAKE)` finds the same program again),
//! with the same small environment. The two trees sit at `<tmp>/make/top` and `<tmp>/rmake/top`;
//! each tree's absolute path is replaced by `<TREE>` in outputs and file contents.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::case::Case;
use crate::cluster::Cluster;
use crate::run::{self, Outcome, Running};
use crate::snapshot::{self, Snapshot};
use crate::tree;

/// Where `rmake-remote` sends its work.
#[derive(Debug, Clone, Copy)]
pub enum Farm<'a> {
    /// A loopback cluster (`RMAKE_COORDINATOR` set to its URL).
    Cluster(&'a Cluster),
    /// No coordinator configured: the client starts its embedded farm, data under
    /// `RMAKE_CACHE_DIR` (a directory of the pair).
    Embedded,
    /// `--local`: the GNU make clone, no farm.
    Local,
}

/// Two copies of one tree and the settings both runs share.
#[derive(Debug)]
pub struct Pair {
    dir: tempfile::TempDir,
    make_tree: PathBuf,
    rmake_tree: PathBuf,
    make_bin: PathBuf,
    rmake_bin: PathBuf,
    /// Extra environment of both runs.
    pub env: Vec<(String, String)>,
    /// Files compared for existence only (patterns, see [`snapshot::is_nocontent`]).
    pub nocontent: Vec<String>,
    /// Compare stdout as a multiset of lines.
    pub unordered_stdout: bool,
    /// Compare stderr as a multiset of lines.
    pub unordered_stderr: bool,
    /// Longest a run may take.
    pub timeout: Duration,
    /// Send stderr into stdout's file (one stream, as on a terminal): compares how the two
    /// interleave.
    pub merge_output: bool,
}

/// One side of a comparison.
#[derive(Debug, Clone)]
pub struct Side {
    /// The raw outcome.
    pub outcome: Outcome,
    /// stdout, tree path normalised (sorted when unordered).
    pub stdout: String,
    /// stderr, likewise.
    pub stderr: String,
    /// The tree after the run.
    pub files: Snapshot,
}

/// make's run and rmake's run of the same command line.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The command line.
    pub args: Vec<String>,
    /// GNU make's side.
    pub make: Side,
    /// rmake-remote's side.
    pub rmake: Side,
}

/// The client's summary line (`RMAKE_SUMMARY=1`): `rmake-remote: N actions: H cache hits,
/// R run remotely, L run locally; hits saved S s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Jobs that were actions.
    pub actions: u64,
    /// Of them, served from the action cache.
    pub hits: u64,
    /// Run on a worker.
    pub remote: u64,
    /// Run on the client.
    pub local: u64,
}

impl Summary {
    /// Parses a summary line.
    pub fn parse(line: &str) -> Option<Summary> {
        let rest = line.strip_prefix("rmake-remote: ")?;
        let nums: Vec<u64> = rest
            .split(|c: char| !c.is_ascii_digit())
            .filter(|w| !w.is_empty())
            .take(4)
            .filter_map(|w| w.parse().ok())
            .collect();
        let looks_right = rest.contains(" actions: ")
            && rest.contains(" cache hits, ")
            && rest.contains(" run remotely, ");
        match (looks_right, nums.as_slice()) {
            (true, [actions, hits, remote, local]) => Some(Summary {
                actions: *actions,
                hits: *hits,
                remote: *remote,
                local: *local,
            }),
            _ => None,
        }
    }
}

impl Comparison {
    /// Removes the client's summary line from rmake's stderr and returns it parsed.
    pub fn take_summary(&mut self) -> Option<Summary> {
        let mut found = None;
        let mut kept = String::new();
        for line in self.rmake.stderr.lines() {
            match (found, Summary::parse(line)) {
                (None, Some(s)) => found = Some(s),
                _ => {
                    kept.push_str(line);
                    kept.push('\n');
                }
            }
        }
        self.rmake.stderr = kept;
        found
    }

    /// Every difference, one paragraph each; empty when the runs agree.
    pub fn problems(&self) -> String {
        let mut out = String::new();
        let (m, r) = (&self.make, &self.rmake);
        if r.outcome.timed_out {
            out.push_str("rmake-remote timed out\n");
        }
        if m.outcome.status != r.outcome.status {
            out.push_str(&format!(
                "status: make {} / rmake {}\n",
                m.outcome.status, r.outcome.status
            ));
        }
        if m.stdout != r.stdout {
            out.push_str(&format!(
                "stdout differs:\n{}",
                text_diff(&m.stdout, &r.stdout)
            ));
        }
        if m.stderr != r.stderr {
            out.push_str(&format!(
                "stderr differs:\n{}",
                text_diff(&m.stderr, &r.stderr)
            ));
        }
        let files = snapshot::diff(&m.files, &r.files);
        if !files.is_empty() {
            out.push_str(&format!("files differ:\n{files}"));
        }
        out
    }

    /// Panics with every difference (and `context`) unless the runs agree.
    pub fn assert_same(&self, context: &str) {
        let p = self.problems();
        assert!(
            p.is_empty(),
            "{context}: rmake-remote {:?} differs from make:\n{p}",
            self.args
        );
    }
}

/// Both texts when short; else the lines around the first difference, with line counts.
fn text_diff(make: &str, rmake: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (
        make.split_inclusive('\n').collect(),
        rmake.split_inclusive('\n').collect(),
    );
    if a.len().max(b.len()) <= 40 {
        return format!("--- make\n{make}--- rmake\n{rmake}");
    }
    let first = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let from = first.saturating_sub(3);
    let show = |v: &[&str]| -> String {
        v.iter()
            .skip(from)
            .take(10)
            .map(|l| format!("{l:?}\n"))
            .collect()
    };
    format!(
        "(make {} lines, rmake {} lines; first difference at line {}; lines {}.. as Rust strings)\n\
         --- make\n{}--- rmake\n{}",
        a.len(),
        b.len(),
        first + 1,
        from + 1,
        show(&a),
        show(&b)
    )
}

fn sorted_lines(s: &str) -> String {
    let mut lines: Vec<&str> = s.lines().collect();
    lines.sort_unstable();
    let mut out = lines.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

impl Pair {
    /// An empty pair; fill both trees with [`Pair::write`] or use a constructor below.
    pub fn new() -> Result<Pair> {
        let dir = tempfile::Builder::new()
            .prefix("rmake-pair-")
            .tempdir()
            .context("creating the pair directory")?;
        let root = dir.path();
        let make_tree = root.join("make").join("top");
        let rmake_tree = root.join("rmake").join("top");
        let make_bin = root.join("bin-make");
        let rmake_bin = root.join("bin-rmake");
        for d in [&make_tree, &rmake_tree, &make_bin, &rmake_bin] {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        for d in ["home", "cache"] {
            std::fs::create_dir_all(root.join(d)).context("creating home/cache")?;
        }
        let remote = &crate::bins::bins()?.remote;
        std::os::unix::fs::symlink("/usr/bin/make", make_bin.join("rmake-remote"))
            .context("linking make")?;
        std::os::unix::fs::symlink(remote, rmake_bin.join("rmake-remote"))
            .context("linking rmake-remote")?;
        Ok(Pair {
            dir,
            make_tree,
            rmake_tree,
            make_bin,
            rmake_bin,
            env: Vec::new(),
            nocontent: Vec::new(),
            unordered_stdout: false,
            unordered_stderr: false,
            timeout: Duration::from_secs(60),
            merge_output: false,
        })
    }

    /// A pair holding a golden case's tree, after its `setup:` lines, with its settings.
    pub fn from_case(case: &Case) -> Result<Pair> {
        let mut p = Pair::new()?;
        for t in p.trees() {
            case.write_tree(&t)?;
            tree::set_mtimes(&t, tree::epoch_2000())?;
        }
        for line in &case.setup {
            p.setup(line)?;
        }
        p.env = case.env.clone();
        p.nocontent = case.nocontent.clone();
        p.unordered_stdout = case.unordered_stdout;
        p.unordered_stderr = case.unordered_stderr;
        if let Some(t) = case.timeout {
            p.timeout = Duration::from_secs(t.max(30));
        }
        Ok(p)
    }

    /// A pair holding copies of the directory `src` (mtimes pinned to 2000-01-01).
    pub fn from_dir(src: &Path) -> Result<Pair> {
        let p = Pair::new()?;
        for t in p.trees() {
            tree::copy_dir(src, &t)?;
            tree::set_mtimes(&t, tree::epoch_2000())?;
        }
        Ok(p)
    }

    /// A pair holding these files (mtimes pinned to 2000-01-01).
    pub fn from_files(files: &[(&str, &str)]) -> Result<Pair> {
        let p = Pair::new()?;
        for t in p.trees() {
            for (path, content) in files {
                tree::write_file(&t, path, content.as_bytes())?;
            }
            tree::set_mtimes(&t, tree::epoch_2000())?;
        }
        Ok(p)
    }

    /// Both trees: make's, then rmake's.
    pub fn trees(&self) -> [PathBuf; 2] {
        [self.make_tree.clone(), self.rmake_tree.clone()]
    }

    /// make's tree.
    pub fn make_tree(&self) -> &Path {
        &self.make_tree
    }

    /// rmake's tree.
    pub fn rmake_tree(&self) -> &Path {
        &self.rmake_tree
    }

    /// The pair's scratch directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The embedded farm's data directory (`RMAKE_CACHE_DIR`).
    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// Runs a shell line (under `set -e`) in both trees.
    pub fn setup(&self, line: &str) -> Result<()> {
        for t in self.trees() {
            let out = Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("set -e\n{line}"))
                .current_dir(&t)
                .output()
                .context("running a setup line")?;
            if !out.status.success() {
                bail!(
                    "setup {line:?} failed in {}: {}",
                    t.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        Ok(())
    }

    fn command(&self, bin: &Path, tree: &Path, args: &[&str], farm: Option<Farm<'_>>) -> Command {
        let mut cmd = Command::new(bin.join("rmake-remote"));
        cmd.arg0("rmake-remote");
        if matches!(farm, Some(Farm::Local)) {
            cmd.arg("--local");
        }
        cmd.args(args)
            .current_dir(tree)
            .env_clear()
            .env(
                "PATH",
                format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
            )
            .env("LC_ALL", "C")
            .env("HOME", self.dir.path().join("home"))
            .env("RMAKE_CACHE_DIR", self.cache_dir());
        if let Some(Farm::Cluster(c)) = farm {
            cmd.env("RMAKE_COORDINATOR", c.url());
            if let Some(token) = c.client_token() {
                cmd.env("RMAKE_TOKEN", token);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// The GNU make command for `args` in make's tree (not started).
    pub fn make_command(&self, args: &[&str]) -> Command {
        self.command(&self.make_bin, &self.make_tree, args, None)
    }

    /// The `rmake-remote` command for `args` in rmake's tree (not started).
    pub fn rmake_command(&self, args: &[&str], farm: Farm<'_>) -> Command {
        self.command(&self.rmake_bin, &self.rmake_tree, args, Some(farm))
    }

    /// Starts GNU make (its own process group).
    pub fn spawn_make(&self, args: &[&str]) -> Result<Running> {
        run::spawn_with(self.make_command(args), self.merge_output)
    }

    /// Starts `rmake-remote` (its own process group).
    pub fn spawn_rmake(&self, args: &[&str], farm: Farm<'_>) -> Result<Running> {
        run::spawn_with(self.rmake_command(args, farm), self.merge_output)
    }

    /// Runs GNU make to completion.
    pub fn run_make(&self, args: &[&str]) -> Result<Outcome> {
        run::run_with(self.make_command(args), self.timeout, self.merge_output)
    }

    /// Runs `rmake-remote` to completion.
    pub fn run_rmake(&self, args: &[&str], farm: Farm<'_>) -> Result<Outcome> {
        run::run_with(
            self.rmake_command(args, farm),
            self.timeout,
            self.merge_output,
        )
    }

    /// Normalises an outcome of the run in `tree` into a comparable side.
    pub fn side(&self, outcome: Outcome, tree: &Path) -> Result<Side> {
        let t = tree.to_string_lossy();
        let norm = |s: &str, sort: bool| {
            let s = s.replace(t.as_ref(), "<TREE>");
            if sort {
                sorted_lines(&s)
            } else {
                s
            }
        };
        Ok(Side {
            stdout: norm(&outcome.stdout, self.unordered_stdout),
            stderr: norm(&outcome.stderr, self.unordered_stderr),
            files: snapshot::take(tree, &self.nocontent)?,
            outcome,
        })
    }

    /// Compares outcomes obtained separately (e.g. from [`Pair::spawn_make`]).
    pub fn compare(&self, args: &[&str], make: Outcome, rmake: Outcome) -> Result<Comparison> {
        Ok(Comparison {
            args: args.iter().map(|s| s.to_string()).collect(),
            make: self.side(make, &self.make_tree)?,
            rmake: self.side(rmake, &self.rmake_tree)?,
        })
    }

    /// Runs make, then rmake-remote, with `args` and compares them.
    pub fn check(&self, args: &[&str], farm: Farm<'_>) -> Result<Comparison> {
        let m = self.run_make(args)?;
        let r = self.run_rmake(args, farm)?;
        Ok(Comparison {
            args: args.iter().map(|s| s.to_string()).collect(),
            make: self.side(m, &self.make_tree)?,
            rmake: self.side(r, &self.rmake_tree)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines_parse() {
        let s = Summary::parse(
            "rmake-remote: 7 actions: 5 cache hits, 2 run remotely, 0 run locally; hits saved 1.5 s",
        );
        assert_eq!(
            s,
            Some(Summary {
                actions: 7,
                hits: 5,
                remote: 2,
                local: 0
            })
        );
        assert_eq!(
            Summary::parse("rmake-remote: *** [Makefile:1: a] Error 1"),
            None
        );
        assert_eq!(
            Summary::parse("make: 7 actions: 5 cache hits, 2 run remotely, 0"),
            None
        );
    }

    #[test]
    fn long_diffs_show_the_first_difference() {
        let a: String = (0..100).map(|i| format!("{i}\n")).collect();
        let b = a.replace("50\n", "fifty\n");
        let d = text_diff(&a, &b);
        assert!(d.contains("first difference at line 51"), "{d}");
        assert!(d.contains("\"fifty\\n\""), "{d}");
        assert!(!d.contains("\"10\\n\""), "{d}");
        assert_eq!(text_diff("x\n", "y\n"), "--- make\nx\n--- rmake\ny\n");
        assert_eq!(sorted_lines("b\na\n"), "a\nb\n");
    }
}
