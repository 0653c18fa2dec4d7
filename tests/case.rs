//! The golden corpus's `.case` files (`tests/golden/README.md`): a header (args, setup lines,
//! environment, which streams are unordered, which files are compared for existence only) and
//! the tree as `-- path --` sections.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// One parsed case.
#[derive(Debug, Clone, Default)]
pub struct Case {
    /// The file name without `.case`.
    pub name: String,
    /// The command line after the program name.
    pub args: Vec<String>,
    /// Shell lines run in the tree before the build.
    pub setup: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// stdout lines compared as a multiset.
    pub unordered_stdout: bool,
    /// stderr lines compared as a multiset.
    pub unordered_stderr: bool,
    /// Patterns of files compared for existence only.
    pub nocontent: Vec<String>,
    /// Seconds the build may take.
    pub timeout: Option<u64>,
    /// The tree: path and content (`None` for an empty directory, path ending in `/`).
    pub files: Vec<(String, Vec<u8>)>,
}

impl Case {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Case> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Case::parse(&name, &text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Parses the text of a case.
    pub fn parse(name: &str, text: &str) -> Result<Case> {
        let mut case = Case {
            name: name.to_string(),
            ..Case::default()
        };
        let mut lines = text.split('\n').peekable();
        // The header.
        while let Some(line) = lines.peek() {
            if section_name(line).is_some() {
                break;
            }
            let line = lines.next().unwrap_or_default().trim_end_matches('\r');
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                bail!("header line without a key: {line:?}");
            };
            let value = value.trim();
            match key.trim() {
                "args" => case.args = split_shell_words(value)?,
                "setup" => case.setup.push(value.to_string()),
                "env" => {
                    let (k, v) = value.split_once('=').unwrap_or((value, ""));
                    case.env.push((k.to_string(), v.to_string()));
                }
                "unordered" => {
                    for w in value.split_whitespace() {
                        match w {
                            "stdout" => case.unordered_stdout = true,
                            "stderr" => case.unordered_stderr = true,
                            other => bail!("unordered: unknown stream {other:?}"),
                        }
                    }
                }
                "nocontent" => case
                    .nocontent
                    .extend(value.split_whitespace().map(str::to_string)),
                "timeout" => {
                    case.timeout = Some(
                        value
                            .parse()
                            .with_context(|| format!("timeout {value:?}"))?,
                    )
                }
                other => bail!("unknown header key {other:?}"),
            }
        }
        // The sections.
        let mut current: Option<(String, Vec<&str>)> = None;
        for line in lines {
            if let Some(path) = section_name(line) {
                if let Some((p, body)) = current.take() {
                    case.files.push((p, section_content(&body)));
                }
                current = Some((path.to_string(), Vec::new()));
            } else if let Some((_, body)) = current.as_mut() {
                body.push(line);
            }
        }
        if let Some((p, mut body)) = current.take() {
            // The text's final newline ends the last line; it starts no line of its own.
            if body.last() == Some(&"") {
                body.pop();
            }
            case.files.push((p, section_content(&body)));
        }
        Ok(case)
    }

    /// Writes the tree into `root`.
    pub fn write_tree(&self, root: &Path) -> Result<()> {
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        for (path, content) in &self.files {
            crate::tree::write_file(root, path, content)?;
        }
        Ok(())
    }

    /// Whether the args already choose a job count (`-j`, `-jN`, `--jobs`).
    pub fn has_jobs_flag(&self) -> bool {
        self.args.iter().any(|a| {
            a.starts_with("--jobs")
                || (a.starts_with('-') && !a.starts_with("--") && a.contains('j'))
        })
    }
}

/// `-- path --` names a section.
fn section_name(line: &str) -> Option<&str> {
    let inner = line.strip_prefix("-- ")?.strip_suffix(" --")?;
    (!inner.is_empty()).then_some(inner)
}

/// The bytes of a section from its lines, with the two escapes undone.
fn section_content(lines: &[&str]) -> Vec<u8> {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let last = i + 1 == lines.len();
        if last && *line == "\\ no newline at end" {
            out.pop();
            break;
        }
        out.push_str(line.strip_prefix('\\').unwrap_or(line));
        out.push('\n');
    }
    out.into_bytes()
}

/// Splits a command line like a POSIX shell would (quotes and backslashes; no expansions).
pub fn split_shell_words(text: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
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
                        None => bail!("unterminated ' in {text:?}"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\' | '$' | '`')) => cur.push(ch),
                            Some(ch) => {
                                cur.push('\\');
                                cur.push(ch);
                            }
                            None => bail!("unterminated \" in {text:?}"),
                        },
                        Some(ch) => cur.push(ch),
                        None => bail!("unterminated \" in {text:?}"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(ch) = chars.next() {
                    cur.push(ch);
                }
            }
            other => {
                in_word = true;
                cur.push(other);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_sections_and_escapes() {
        let text = "# c\nargs: -j2 'A=two words' all\nsetup: touch x\nunordered: stdout\n\
                    nocontent: *.o prog\n-- Makefile --\nall: ; @echo hi\n\\-- x --\n-- d/ --\n\
                    -- t --\nno eol\n\\ no newline at end\n";
        let c = Case::parse("n", text).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(c.args, vec!["-j2", "A=two words", "all"]);
        assert_eq!(c.setup, vec!["touch x"]);
        assert!(c.unordered_stdout && !c.unordered_stderr);
        assert_eq!(c.nocontent, vec!["*.o", "prog"]);
        assert_eq!(
            c.files[0],
            ("Makefile".into(), b"all: ; @echo hi\n-- x --\n".to_vec())
        );
        assert_eq!(c.files[1], ("d/".into(), Vec::new()));
        assert_eq!(c.files[2], ("t".into(), b"no eol".to_vec()));
        assert!(c.has_jobs_flag());
    }

    #[test]
    fn shell_words() {
        let w = split_shell_words(r#"a "b \"c\"" 'd e'f g\ h"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w, vec!["a", "b \"c\"", "d ef", "g h"]);
        assert!(split_shell_words("'open").is_err());
    }
}
