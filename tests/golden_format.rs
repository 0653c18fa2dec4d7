//! The golden corpus's text formats: `.case` files (header + files), `.expected` files (status,
//! streams, resulting files), their shared `-- name --` sections with escapes, and `args:` word
//! splitting. The one reader of the corpus: the golden runner (`cli/tests/golden.rs`) and the
//! end-to-end tests ([`crate::case`]) both use it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

pub type Res<T> = Result<T, String>;

/// Marks a section whose content does not end with a newline.
const NOEOL: &str = "\\ no newline at end";

/// One parsed `.case` file.
#[derive(Debug, Default)]
pub struct Case {
    pub name: String,
    pub case_path: PathBuf,
    pub args: Vec<String>,
    pub setup: Vec<String>,
    pub env: Vec<(String, String)>,
    pub unordered_stdout: bool,
    pub unordered_stderr: bool,
    pub nocontent: Vec<String>,
    pub timeout: Option<Duration>,
    pub files: Vec<(String, String)>,
}

/// What a run leaves behind: the compared outcome.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub status: String,
    pub stdout: String,
    pub stderr: String,
    /// New or changed files and directories, and deleted inputs, by relative path.
    pub entries: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Text(String),
    Blob { size: u64, sha256: String },
    Any,
    Dir,
    Link(String),
    Deleted,
}

/// Named `-- name --` sections with their (unescaped) bodies, in order.
pub type Sections = Vec<(String, String)>;

/// Splits a txtar-like document into its header lines and `-- name --` sections (unescaped).
pub fn split_sections(text: &str) -> (Vec<String>, Sections) {
    let mut header = Vec::new();
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in text.split_inclusive('\n') {
        let bare = line.strip_suffix('\n').unwrap_or(line);
        if bare.starts_with("-- ") && bare.ends_with(" --") && bare.len() >= 6 {
            sections.push((bare[3..bare.len() - 3].to_string(), String::new()));
            continue;
        }
        match sections.last_mut() {
            None => header.push(bare.to_string()),
            Some((_, body)) => {
                if bare == NOEOL {
                    if body.ends_with('\n') {
                        body.pop();
                    }
                } else if let Some(rest) = bare.strip_prefix('\\') {
                    body.push_str(rest);
                    body.push('\n');
                } else {
                    body.push_str(bare);
                    body.push('\n');
                }
            }
        }
    }
    (header, sections)
}

/// Writes a section body so that `split_sections` reads it back exactly.
pub fn escape_body(out: &mut String, body: &str) {
    if body.is_empty() {
        return;
    }
    for line in body.split_inclusive('\n') {
        let bare = line.strip_suffix('\n').unwrap_or(line);
        if bare.starts_with('\\') || bare.starts_with("-- ") {
            out.push('\\');
        }
        out.push_str(bare);
        out.push('\n');
    }
    if !body.ends_with('\n') {
        out.push_str(NOEOL);
        out.push('\n');
    }
}

/// Splits an `args:` line into words, honouring '…' and "…" quoting and backslash escapes.
pub fn shell_words(s: &str) -> Res<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err(format!("unterminated ' in {s:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => cur.extend(chars.next()),
                        Some(ch) => cur.push(ch),
                        None => return Err(format!("unterminated \" in {s:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.extend(chars.next());
            }
            ch => {
                in_word = true;
                cur.push(ch);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Reads and parses the `.case` file at `case_path`.
pub fn parse_case(name: String, case_path: PathBuf) -> Res<Case> {
    let text = fs::read_to_string(&case_path).map_err(|e| format!("read: {e}"))?;
    parse_case_text(name, case_path, &text)
}

/// Parses the text of a `.case` file.
pub fn parse_case_text(name: String, case_path: PathBuf, text: &str) -> Res<Case> {
    let (header, sections) = split_sections(text);
    let mut case = Case {
        name,
        case_path,
        ..Case::default()
    };
    for line in header {
        let line = line.trim_end();
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        let value = value.trim();
        match key.trim() {
            "args" => case.args.extend(shell_words(value)?),
            "setup" => case.setup.push(value.to_string()),
            "env" => {
                let (k, v) = value
                    .split_once('=')
                    .ok_or_else(|| format!("bad env {value:?}"))?;
                case.env.push((k.to_string(), v.to_string()));
            }
            "unordered" => {
                for w in value.split_whitespace() {
                    match w {
                        "stdout" => case.unordered_stdout = true,
                        "stderr" => case.unordered_stderr = true,
                        other => return Err(format!("unordered: unknown stream {other:?}")),
                    }
                }
            }
            "nocontent" => case
                .nocontent
                .extend(value.split_whitespace().map(str::to_string)),
            "timeout" => {
                let secs: u64 = value
                    .parse()
                    .map_err(|_| format!("bad timeout {value:?}"))?;
                case.timeout = Some(Duration::from_secs(secs));
            }
            other => return Err(format!("unknown header {other:?}")),
        }
    }
    for (path, body) in sections {
        if path.is_empty() || path.starts_with('/') || path.split('/').any(|c| c == "..") {
            return Err(format!("bad file name {path:?}"));
        }
        case.files.push((path, body));
    }
    Ok(case)
}

pub fn parse_expected(text: &str) -> Res<Outcome> {
    let (header, sections) = split_sections(text);
    let mut out = Outcome::default();
    for line in header {
        if let Some(v) = line.strip_prefix("status: ") {
            out.status = v.to_string();
        }
    }
    for (name, body) in sections {
        let (kind, rest) = name.split_once(' ').unwrap_or((name.as_str(), ""));
        match kind {
            "stdout" => out.stdout = body,
            "stderr" => out.stderr = body,
            "file" => {
                out.entries.insert(rest.to_string(), Entry::Text(body));
            }
            "blob" => {
                let mut parts = rest.rsplitn(3, ' ');
                let sha = parts.next().and_then(|s| s.strip_prefix("sha256="));
                let size = parts
                    .next()
                    .and_then(|s| s.strip_prefix("size="))
                    .and_then(|s| s.parse().ok());
                let path = parts.next();
                match (path, size, sha) {
                    (Some(p), Some(size), Some(sha)) => {
                        out.entries.insert(
                            p.to_string(),
                            Entry::Blob {
                                size,
                                sha256: sha.to_string(),
                            },
                        );
                    }
                    _ => return Err(format!("bad blob line {name:?}")),
                }
            }
            "any" => {
                out.entries.insert(rest.to_string(), Entry::Any);
            }
            "dir" => {
                out.entries.insert(rest.to_string(), Entry::Dir);
            }
            "deleted" => {
                out.entries.insert(rest.to_string(), Entry::Deleted);
            }
            "link" => {
                let (p, t) = rest
                    .split_once(" -> ")
                    .ok_or_else(|| format!("bad link {name:?}"))?;
                out.entries
                    .insert(p.to_string(), Entry::Link(t.to_string()));
            }
            other => return Err(format!("unknown section {other:?}")),
        }
    }
    Ok(out)
}

pub fn render_expected(case: &Case, o: &Outcome) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Produced by GNU make 4.3 from {}.case (BLESS=1); do not edit.",
        case.name
    );
    let _ = writeln!(s, "status: {}", o.status);
    s.push_str("-- stdout --\n");
    escape_body(&mut s, &o.stdout);
    s.push_str("-- stderr --\n");
    escape_body(&mut s, &o.stderr);
    for (path, e) in &o.entries {
        match e {
            Entry::Text(body) => {
                let _ = writeln!(s, "-- file {path} --");
                escape_body(&mut s, body);
            }
            Entry::Blob { size, sha256 } => {
                let _ = writeln!(s, "-- blob {path} size={size} sha256={sha256} --");
            }
            Entry::Any => {
                let _ = writeln!(s, "-- any {path} --");
            }
            Entry::Dir => {
                let _ = writeln!(s, "-- dir {path} --");
            }
            Entry::Link(t) => {
                let _ = writeln!(s, "-- link {path} -> {t} --");
            }
            Entry::Deleted => {
                let _ = writeln!(s, "-- deleted {path} --");
            }
        }
    }
    s
}

/// `*` matches any run of characters (slashes included); everything else matches itself.
pub fn glob_match(pat: &str, s: &str) -> bool {
    match pat.split_once('*') {
        None => pat == s,
        Some((head, tail)) => {
            let Some(rest) = s.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| glob_match(tail, &rest[i..]))
        }
    }
}

/// Checks the runner's own text handling before trusting it with the corpus.
pub fn self_test() -> Res<()> {
    for body in [
        "",
        "a\n",
        "a",
        "\\x\n-- y --\n",
        "\\ no newline at end\n",
        "x\n\n",
        "\n",
        "-- z",
    ] {
        let mut doc = String::from("-- f --\n");
        escape_body(&mut doc, body);
        let (_, sections) = split_sections(&doc);
        let got = sections.first().map(|(_, b)| b.as_str());
        if got != Some(body) {
            return Err(format!("self-test: {body:?} came back as {got:?}"));
        }
    }
    let words = shell_words(r#"-j2 'a b' "c\"d" e\ f ''"#)?;
    if words != ["-j2", "a b", "c\"d", "e f", ""] {
        return Err(format!("self-test: shell_words gave {words:?}"));
    }
    if !glob_match("*.o", "sub/x.o") || glob_match("*.o", "x.c") || !glob_match("p*g", "prog") {
        return Err("self-test: glob_match".to_string());
    }
    let mut o = Outcome {
        status: "0".into(),
        stdout: "x".into(),
        ..Outcome::default()
    };
    o.entries.insert(
        "a b".into(),
        Entry::Blob {
            size: 3,
            sha256: "ab".into(),
        },
    );
    o.entries.insert("d".into(), Entry::Deleted);
    o.entries
        .insert("t".into(), Entry::Text("-- t --\n".into()));
    let case = Case {
        name: "self/test".into(),
        ..Case::default()
    };
    if parse_expected(&render_expected(&case, &o))? != o {
        return Err("self-test: expected-file round trip".to_string());
    }
    Ok(())
}
