//! Comparing a run with its expected outcome: per-stream line diffs, file differences, and the
//! one-line summaries that KNOWN_FAILURES records.

use crate::format::{Case, Entry, Outcome};
use std::collections::BTreeSet;
use std::fmt::Write as _;

const MAX_DIFF_LINES: usize = 60;

/// A line diff (longest common subsequence), `-` expected, `+` actual, capped in length.
pub(crate) fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    if a.len() * b.len() > 4_000_000 {
        return format!(
            "    (too large to diff: {} vs {} lines)\n",
            a.len(),
            b.len()
        );
    }
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out, mut n) = (0, 0, String::new(), 0);
    while i < a.len() || j < b.len() {
        if n >= MAX_DIFF_LINES {
            out.push_str("    ...\n");
            break;
        }
        if i < a.len() && j < b.len() && a[i] == b[j] {
            let _ = writeln!(out, "     {}", a[i]);
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            let _ = writeln!(out, "    +{}", b[j]);
            j += 1;
        } else {
            let _ = writeln!(out, "    -{}", a[i]);
            i += 1;
        }
        n += 1;
    }
    if !expected.is_empty()
        && !actual.is_empty()
        && expected.ends_with('\n') != actual.ends_with('\n')
    {
        out.push_str("    (final newline differs)\n");
    }
    out
}

pub(crate) fn sorted_lines(s: &str) -> String {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort_unstable();
    v.join("\n")
}

/// Compares; returns a readable report of every difference (empty when equal).
pub(crate) fn compare(case: &Case, exp: &Outcome, act: &Outcome) -> String {
    let mut r = String::new();
    if exp.status != act.status {
        let _ = writeln!(
            r,
            "  exit status: expected {}, got {}",
            exp.status, act.status
        );
    }
    for (label, unordered, e, a) in [
        ("stdout", case.unordered_stdout, &exp.stdout, &act.stdout),
        ("stderr", case.unordered_stderr, &exp.stderr, &act.stderr),
    ] {
        let same = if unordered {
            sorted_lines(e) == sorted_lines(a)
        } else {
            e == a
        };
        if !same {
            let _ = write!(
                r,
                "  {label} differs{}:\n{}",
                if unordered { " (unordered)" } else { "" },
                diff(e, a)
            );
        }
    }
    let paths: BTreeSet<&String> = exp.entries.keys().chain(act.entries.keys()).collect();
    for p in paths {
        let (e, a) = (exp.entries.get(p), act.entries.get(p));
        if e == a {
            continue;
        }
        match (e, a) {
            (Some(Entry::Text(et)), Some(Entry::Text(at))) => {
                let _ = write!(r, "  file {p} differs:\n{}", diff(et, at));
            }
            _ => {
                let _ = writeln!(
                    r,
                    "  file {p}: expected {}, got {}",
                    describe(e),
                    describe(a)
                );
            }
        }
    }
    r
}

pub(crate) fn describe(e: Option<&Entry>) -> String {
    match e {
        None => "unchanged/absent".to_string(),
        Some(Entry::Text(t)) => format!("text ({} bytes)", t.len()),
        Some(Entry::Blob { size, .. }) => format!("binary ({size} bytes)"),
        Some(Entry::Any) => "a file".to_string(),
        Some(Entry::Dir) => "an empty directory".to_string(),
        Some(Entry::Link(t)) => format!("a symlink to {t}"),
        Some(Entry::Deleted) => "deleted".to_string(),
    }
}

/// A one-line reason for KNOWN_FAILURES from a failure report: what differs, or the run error.
pub(crate) fn summarise(report: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for line in report
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
    {
        let l = line.trim();
        let part = if l.starts_with("exit status") {
            "status"
        } else if l.starts_with("stdout") {
            "stdout"
        } else if l.starts_with("stderr") {
            "stderr"
        } else if l.starts_with("file ") {
            "files"
        } else {
            return l.chars().take(100).collect();
        };
        if !parts.contains(&part) {
            parts.push(part);
        }
    }
    format!("differs: {}", parts.join(" "))
}
