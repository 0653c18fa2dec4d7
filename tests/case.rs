//! The golden corpus's `.case` files (`tests/golden/README.md`): a header (args, setup lines,
//! environment, which streams are unordered, which files are compared for existence only) and
//! the tree as `-- path --` sections.

use std::path::Path;

use anyhow::{Context, Result};

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

    /// Parses the text of a case (with the golden runner's reader, [`crate::golden_format`]).
    pub fn parse(name: &str, text: &str) -> Result<Case> {
        let c = crate::golden_format::parse_case_text(name.to_string(), name.into(), text)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Case {
            name: c.name,
            args: c.args,
            setup: c.setup,
            env: c.env,
            unordered_stdout: c.unordered_stdout,
            unordered_stderr: c.unordered_stderr,
            nocontent: c.nocontent,
            timeout: c.timeout.map(|d| d.as_secs()),
            files: c.files.into_iter().map(|(p, body)| (p, body.into_bytes())).collect(),
        })
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

}
