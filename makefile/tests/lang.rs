//! Differential cases of the language: each `tests/lang/NAME.mk` is loaded (goal-less, parse-time output
//! only) and its stdout/stderr compared with `NAME.expected`, which `BLESS=1` regenerates by running
//! GNU make 4.3 (`make -s -f NAME.mk`) on the same file.

#[path = "support/dirhost.rs"]
mod dirhost;

use dirhost::{error_text, DirHost};
use rmake_makefile::{Database, LoadOptions};
use std::fs;
use std::path::Path;
use std::process::Command;

fn env() -> Vec<(String, String)> {
    vec![
        ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
        ("HOME".into(), "/nonexistent".into()),
    ]
}

/// Run our loader on a case: (stdout, stderr).
fn ours(dir: &Path, name: &str, extra: &[String]) -> (String, String) {
    let mut h = DirHost::new(dir);
    let opts = LoadOptions {
        makefiles: vec![name.to_string()],
        env: env(),
        cmdline_vars: extra.to_vec(),
        make_program: "make".into(),
        ..LoadOptions::default()
    };
    match Database::load(&mut h, &opts) {
        Ok(_) => {}
        Err(e) => h.err.push_str(&error_text(&e)),
    }
    (h.out, h.err)
}

/// Run GNU make on a case: (stdout, stderr), with the recipe of the default goal not shown.
fn theirs(dir: &Path, name: &str, extra: &[String]) -> (String, String) {
    let o = Command::new("make")
        .arg("-s")
        .arg("-f")
        .arg(name)
        .arg("--no-print-directory")
        .arg("-n")
        .arg(".rmake-lang-case-goal")
        .args(extra)
        .current_dir(dir)
        .env_clear()
        .envs(env())
        .output()
        .expect("make runs");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    // The goal we asked for does not exist; drop make's complaint about it.
    let err: String = err
        .lines()
        .filter(|l| !l.contains(".rmake-lang-case-goal"))
        .map(|l| format!("{l}\n"))
        .collect();
    (String::from_utf8_lossy(&o.stdout).into_owned(), err)
}

fn render(out: &str, err: &str) -> String {
    format!("{out}--- stderr ---\n{err}")
}

#[test]
fn lang_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lang");
    let bless = std::env::var_os("BLESS").is_some();
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("tests/lang")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".mk"))
        .collect();
    names.sort();
    let only = std::env::var("CASE").ok();
    let mut failures = Vec::new();
    for name in &names {
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        let text = fs::read_to_string(dir.join(name)).expect("read case");
        // A first line `# args: A=1 B=2` gives command-line variables.
        let extra: Vec<String> = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# args:"))
            .map(|a| a.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let expected_path = dir.join(name.replace(".mk", ".expected"));
        if bless {
            let (o, e) = theirs(&dir, name, &extra);
            fs::write(&expected_path, render(&o, &e)).expect("write expected");
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        let (o, e) = ours(&dir, name, &extra);
        let got = render(&o, &e);
        if got != expected {
            failures.push(format!(
                "=== {name}\n--- expected\n{expected}--- got\n{got}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}
