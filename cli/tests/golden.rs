//! Differential golden corpus runner: runs every `tests/golden/**/*.case` through `rmake-remote` in local
//! mode and then through the embedded farm (or, with `BLESS=1`, through real GNU make under the same
//! name) and compares stdout, stderr, exit status and the resulting files with the `.expected` file
//! beside the case. The formats are read by `rmake_tests::golden_format`. See tests/golden/README.md.

#[path = "golden/compare.rs"]
mod compare;
use rmake_tests::golden_format as format;

use compare::{compare, sorted_lines, summarise};
use format::{
    glob_match, parse_case, parse_expected, render_expected, self_test, Case, Entry, Outcome, Res,
};

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The name the program runs under, in bless mode and in test mode alike.
const PROGRAM: &str = "rmake-remote";
/// Replaces the case directory's absolute path in every output.
const TMP_TOKEN: &str = "<TMP>";
/// Files at most this large, valid UTF-8 and NUL-free, are recorded inline.
const INLINE_LIMIT: usize = 8192;
/// Every laid-out file and directory gets this mtime (2000-01-01 00:00:00 UTC) before `setup:` runs.
const BASE_MTIME: u64 = 946_684_800;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A file-tree snapshot: relative path to entry (dirs only when empty).
fn snapshot(root: &Path, case: &Case, tmp: &str) -> Res<BTreeMap<String, Entry>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let rd = fs::read_dir(&dir).map_err(|e| format!("read_dir {}: {e}", dir.display()))?;
        let mut empty = true;
        for ent in rd {
            empty = false;
            let ent = ent.map_err(|e| e.to_string())?;
            let name = ent.file_name().to_string_lossy().into_owned();
            let path = ent.path();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let meta = fs::symlink_metadata(&path).map_err(|e| e.to_string())?;
            if meta.file_type().is_symlink() {
                let t = fs::read_link(&path).map_err(|e| e.to_string())?;
                out.insert(r, Entry::Link(t.to_string_lossy().replace(tmp, TMP_TOKEN)));
            } else if meta.is_dir() {
                stack.push((path, r));
            } else if case.nocontent.iter().any(|p| glob_match(p, &r)) {
                out.insert(r, Entry::Any);
            } else {
                let bytes = fs::read(&path).map_err(|e| e.to_string())?;
                let entry = match String::from_utf8(bytes) {
                    Ok(text) if text.len() <= INLINE_LIMIT && !text.contains('\0') => {
                        Entry::Text(text.replace(tmp, TMP_TOKEN))
                    }
                    Ok(text) => blob(text.as_bytes()),
                    Err(e) => blob(e.as_bytes()),
                };
                out.insert(r, entry);
            }
        }
        if empty && !rel.is_empty() {
            out.insert(rel, Entry::Dir);
        }
    }
    Ok(out)
}

fn blob(bytes: &[u8]) -> Entry {
    Entry::Blob {
        size: bytes.len() as u64,
        sha256: hex(&Sha256::digest(bytes)),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Everything a case run needs that is shared by all cases.
struct Ctx {
    bless: bool,
    /// The embedded farm's cache directory in the farm pass.
    farm_cache: Option<PathBuf>,
    bin_dir: PathBuf,
    work: PathBuf,
}

fn base_env(ctx: &Ctx, case: &Case) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "PATH".to_string(),
            format!("{}:/usr/local/bin:/usr/bin:/bin", ctx.bin_dir.display()),
        ),
        ("LC_ALL".to_string(), "C".to_string()),
    ];
    // The farm pass runs every case through the embedded farm (the default mode of
    // rmake-remote); otherwise the cases check local mode.
    match &ctx.farm_cache {
        Some(dir) => env.push(("RMAKE_CACHE_DIR".to_string(), dir.display().to_string())),
        None => env.push(("RMAKE_LOCAL".to_string(), "1".to_string())),
    }
    env.extend(case.env.iter().cloned());
    env
}

fn set_tree_mtimes(dir: &Path) -> Res<()> {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(BASE_MTIME);
    for ent in fs::read_dir(dir).map_err(|e| e.to_string())? {
        let ent = ent.map_err(|e| e.to_string())?;
        let p = ent.path();
        if p.is_dir() {
            set_tree_mtimes(&p)?;
        } else {
            let f = fs::File::options()
                .write(true)
                .open(&p)
                .map_err(|e| e.to_string())?;
            f.set_modified(t).map_err(|e| e.to_string())?;
        }
    }
    let d = fs::File::open(dir).map_err(|e| e.to_string())?;
    d.set_modified(t).map_err(|e| e.to_string())
}

/// Runs one command with a timeout, in its own process group; returns (status, stdout, stderr).
fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Res<(String, Vec<u8>, Vec<u8>)> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
    let pid = child.id();
    let mut so = child.stdout.take().ok_or("no stdout pipe")?;
    let mut se = child.stderr.take().ok_or("no stderr pipe")?;
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if start.elapsed() > timeout => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("wait: {e}")),
        }
    };
    let status = match status {
        Some(st) => match (
            st.code(),
            std::os::unix::process::ExitStatusExt::signal(&st),
        ) {
            (Some(c), _) => c.to_string(),
            (None, Some(sig)) => format!("signal {sig}"),
            (None, None) => "unknown".to_string(),
        },
        None => {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            let _ = child.wait();
            let _ = t_out.join();
            let _ = t_err.join();
            return Err(format!("timed out after {}s", timeout.as_secs()));
        }
    };
    // A background grandchild may hold the pipes open: kill the group so the readers finish.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
    let out = t_out.join().map_err(|_| "stdout reader panicked")?;
    let err = t_err.join().map_err(|_| "stderr reader panicked")?;
    Ok((status, out, err))
}

fn run_case(ctx: &Ctx, case: &Case) -> Res<Outcome> {
    // A stable path (the case's name, then `top`): outputs like $(notdir $(CURDIR)) must not vary.
    let dir = ctx.work.join(case.name.replace('/', "__")).join("top");
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let dir = dir.canonicalize().map_err(|e| e.to_string())?;
    let tmp = dir.to_string_lossy().into_owned();
    for (path, body) in &case.files {
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        if path.ends_with('/') {
            fs::create_dir_all(&p).map_err(|e| e.to_string())?;
        } else {
            fs::write(&p, body).map_err(|e| format!("write {path}: {e}"))?;
        }
    }
    set_tree_mtimes(&dir)?;
    let env = base_env(ctx, case);
    if !case.setup.is_empty() {
        let script = format!("set -e\n{}\n", case.setup.join("\n"));
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(script)
            .current_dir(&dir)
            .env_clear()
            .envs(env.iter().cloned());
        let (st, _o, e) = run_with_timeout(cmd, DEFAULT_TIMEOUT)?;
        if st != "0" {
            return Err(format!(
                "setup failed ({st}): {}",
                String::from_utf8_lossy(&e)
            ));
        }
    }
    let before = snapshot(&dir, case, &tmp)?;
    let mut cmd = Command::new(ctx.bin_dir.join(PROGRAM));
    cmd.arg0(PROGRAM);
    if !ctx.bless {
        cmd.arg("--local");
    }
    cmd.args(&case.args)
        .current_dir(&dir)
        .env_clear()
        .envs(env.iter().cloned());
    let (status, out, err) = run_with_timeout(cmd, case.timeout.unwrap_or(DEFAULT_TIMEOUT))?;
    let after = snapshot(&dir, case, &tmp)?;
    let mut entries = BTreeMap::new();
    for (p, e) in &after {
        if before.get(p) != Some(e) {
            entries.insert(p.clone(), e.clone());
        }
    }
    for p in before.keys() {
        if !after.contains_key(p) && !matches!(before.get(p), Some(Entry::Dir)) {
            entries.insert(p.clone(), Entry::Deleted);
        }
    }
    let _ = fs::remove_dir_all(&dir);
    Ok(Outcome {
        status,
        stdout: String::from_utf8_lossy(&out).replace(&tmp, TMP_TOKEN),
        stderr: String::from_utf8_lossy(&err).replace(&tmp, TMP_TOKEN),
        entries,
    })
}

fn find_cases(root: &Path, rel: &str, out: &mut Vec<(String, PathBuf)>) -> Res<()> {
    let mut ents: Vec<_> = fs::read_dir(root)
        .map_err(|e| format!("{}: {e}", root.display()))?
        .flatten()
        .collect();
    ents.sort_by_key(|e| e.file_name());
    for ent in ents {
        let name = ent.file_name().to_string_lossy().into_owned();
        let path = ent.path();
        let r = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if path.is_dir() {
            find_cases(&path, &r, out)?;
        } else if let Some(stem) = r.strip_suffix(".case") {
            out.push((stem.to_string(), path));
        }
    }
    Ok(())
}

/// KNOWN_FAILURES: `group/name  reason` per line; `#` comments.
fn read_known(path: &Path) -> HashMap<String, String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((n, why)) => (n.to_string(), why.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

fn write_known(path: &Path, entries: &BTreeMap<String, String>) -> Res<()> {
    let mut s = String::from(
        "# Golden cases that rmake-remote --local does not pass yet: `group/name  reason`.\n\
         # Regenerate with GOLDEN_UPDATE_KNOWN=1 cargo test -p rmake-cli --test golden\n\
         # (hand-written reasons of cases that still fail are kept).\n",
    );
    for (name, why) in entries {
        let _ = writeln!(s, "{name}  {why}");
    }
    fs::write(path, s).map_err(|e| format!("write {}: {e}", path.display()))
}

enum Verdict {
    Pass,
    Fail(String),
    Blessed,
}

fn sorted_keeping_eol(s: &str) -> String {
    let mut out = sorted_lines(s);
    if s.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn check(ctx: &Ctx, case: &Case) -> Verdict {
    let expected_path = case.case_path.with_extension("expected");
    let actual = match run_case(ctx, case) {
        Ok(a) => a,
        Err(e) => return Verdict::Fail(format!("  {e}\n")),
    };
    if ctx.bless {
        // Unordered streams are recorded sorted, so re-blessing does not churn them.
        let mut actual = actual;
        if case.unordered_stdout {
            actual.stdout = sorted_keeping_eol(&actual.stdout);
        }
        if case.unordered_stderr {
            actual.stderr = sorted_keeping_eol(&actual.stderr);
        }
        return match fs::write(&expected_path, render_expected(case, &actual)) {
            Ok(()) => Verdict::Blessed,
            Err(e) => Verdict::Fail(format!("  cannot write {}: {e}\n", expected_path.display())),
        };
    }
    let text = match fs::read_to_string(&expected_path) {
        Ok(t) => t,
        Err(e) => return Verdict::Fail(format!("  no expected file (run with BLESS=1): {e}\n")),
    };
    match parse_expected(&text) {
        Err(e) => Verdict::Fail(format!("  bad expected file: {e}\n")),
        Ok(exp) => {
            let report = compare(case, &exp, &actual);
            if report.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Fail(report)
            }
        }
    }
}

/// Runs the corpus in local mode (`rmake-remote --local`) and then through the embedded farm
/// (rmake-remote's default mode); `GOLDEN_MODE=local` or `farm` runs one of them. Blessing
/// runs make once.
fn main() -> ExitCode {
    let bless = std::env::var("BLESS").is_ok_and(|v| !v.is_empty() && v != "0");
    let modes: Vec<bool> = match std::env::var("GOLDEN_MODE").as_deref() {
        _ if bless => vec![false],
        Ok("local") => vec![false],
        Ok("farm") => vec![true],
        _ => vec![false, true],
    };
    let mut ok = true;
    for farm in modes {
        match real_main(farm) {
            Ok(true) => {}
            Ok(false) => ok = false,
            Err(e) => {
                eprintln!("golden: error: {e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn real_main(farm: bool) -> Res<bool> {
    self_test()?;
    let bless = std::env::var("BLESS").is_ok_and(|v| !v.is_empty() && v != "0");
    let filter = std::env::var("GOLDEN").unwrap_or_default();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden");
    let root = root
        .canonicalize()
        .map_err(|e| format!("{}: {e}", root.display()))?;
    let mut found = Vec::new();
    find_cases(&root, "", &mut found)?;
    let known = read_known(&root.join("KNOWN_FAILURES"));
    let mut cases = Vec::new();
    let mut bad = Vec::new();
    for (name, path) in found.into_iter().filter(|(n, _)| n.contains(&filter)) {
        match parse_case(name.clone(), path) {
            Ok(c) => cases.push(c),
            Err(e) => bad.push((name, e)),
        }
    }
    let work = tempfile::Builder::new()
        .prefix("rmake-golden")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let bin_dir = work.path().join("bin");
    fs::create_dir_all(&bin_dir).map_err(|e| e.to_string())?;
    let target = if bless {
        PathBuf::from("/usr/bin/make")
    } else {
        PathBuf::from(env!("CARGO_BIN_EXE_rmake-remote"))
    };
    std::os::unix::fs::symlink(&target, bin_dir.join(PROGRAM)).map_err(|e| e.to_string())?;
    let ctx = Arc::new(Ctx {
        farm_cache: farm.then(|| work.path().join("farm-cache")),
        bless,
        bin_dir,
        work: work.path().join("cases"),
    });
    let cases = Arc::new(cases);
    let next = Arc::new(AtomicUsize::new(0));
    let results: Arc<Mutex<Vec<(usize, Verdict)>>> = Arc::new(Mutex::new(Vec::new()));
    let jobs = std::env::var("GOLDEN_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get() * 2))
        .max(1);
    let mut handles = Vec::new();
    for _ in 0..jobs {
        let (ctx, cases, next, results) =
            (ctx.clone(), cases.clone(), next.clone(), results.clone());
        handles.push(std::thread::spawn(move || loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            let Some(case) = cases.get(i) else { break };
            let v = check(&ctx, case);
            if let Ok(mut r) = results.lock() {
                r.push((i, v));
            }
        }));
    }
    for h in handles {
        h.join().map_err(|_| "worker thread panicked")?;
    }
    let mut results = std::mem::take(&mut *results.lock().map_err(|_| "poisoned")?);
    results.sort_by_key(|(i, _)| *i);
    let update_known = !bless
        && !farm
        && std::env::var("GOLDEN_UPDATE_KNOWN").is_ok_and(|v| !v.is_empty() && v != "0");
    let ran: BTreeSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    let mut new_known: BTreeMap<String, String> = known
        .iter()
        .filter(|(n, _)| !ran.contains(n.as_str()))
        .map(|(n, w)| (n.clone(), w.clone()))
        .collect();
    let (mut passed, mut failed, mut known_n, mut blessed) = (0, bad.len(), 0, 0);
    for (name, e) in &bad {
        println!("FAIL {name}: bad case file: {e}");
    }
    for (i, v) in results {
        let name = &cases[i].name;
        match v {
            Verdict::Blessed => blessed += 1,
            Verdict::Pass => {
                passed += 1;
                // A case listed as flaky stays listed until someone removes it by hand.
                if let Some(why) = known
                    .get(name)
                    .filter(|w| update_known && w.starts_with("flaky"))
                {
                    new_known.insert(name.clone(), why.clone());
                }
                match known.get(name) {
                    Some(why) if why.starts_with("flaky") => {
                        println!(
                            "FIXED {name}: passes this time (listed as flaky in KNOWN_FAILURES)"
                        );
                    }
                    Some(_) => println!(
                        "FIXED {name}: passes now; remove it from tests/golden/KNOWN_FAILURES"
                    ),
                    None => {}
                }
            }
            Verdict::Fail(report) if update_known => {
                let why = known
                    .get(name)
                    .filter(|w| !w.is_empty() && !w.starts_with("differs:"))
                    .cloned()
                    .unwrap_or_else(|| summarise(&report));
                new_known.insert(name.clone(), why);
                known_n += 1;
            }
            Verdict::Fail(report) if known.contains_key(name) => {
                known_n += 1;
                if std::env::var("GOLDEN_VERBOSE").is_ok() {
                    print!("KNOWN {name}\n{report}");
                }
            }
            Verdict::Fail(report) => {
                failed += 1;
                print!("FAIL {name}\n{report}");
            }
        }
    }
    if update_known {
        write_known(&root.join("KNOWN_FAILURES"), &new_known)?;
        println!(
            "golden: KNOWN_FAILURES rewritten with {} cases",
            new_known.len()
        );
    }
    let label = if farm { "golden (embedded farm)" } else { "golden (local mode)" };
    if bless {
        println!("golden: {blessed} blessed, {failed} failed");
    } else if known_n > 0 {
        println!("{label}: {passed} passed, {failed} failed, {known_n} known");
    } else {
        println!("{label}: {passed} passed, {failed} failed");
    }
    Ok(failed == 0)
}
