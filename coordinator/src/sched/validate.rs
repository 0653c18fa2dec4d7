//! Checks of paths that come from the wire: an action's inputs, outputs and working directory,
//! and a result's output files. Every one must be relative, without `..`, `.`, empty or
//! absolute components.

use rmake_proto::exec::ActionSpec;
use rmake_proto::OutputFile;

/// Why a path is refused, naming the field and the path.
fn check(field: &str, path: &str) -> Result<(), String> {
    rmake_cas::split_path(path).map(drop).map_err(|e| match e {
        rmake_cas::CasError::InvalidPath { reason, .. } => {
            format!("{field} {path:?} is not a safe relative path: {reason}")
        }
        other => format!("{field} {path:?}: {other}"),
    })
}

/// Checks every path of a spec; the message says which one is wrong and why.
pub(crate) fn spec(spec: &ActionSpec) -> Result<(), String> {
    if !spec.working_dir.is_empty() {
        check("working_dir", &spec.working_dir)?;
    }
    for f in &spec.inputs {
        check("input", &f.path)?;
    }
    for o in &spec.outputs {
        check("output", o)?;
    }
    Ok(())
}

/// Checks the output files of a result.
pub(crate) fn outputs(files: &[OutputFile]) -> Result<(), String> {
    files.iter().try_for_each(|f| check("output file", &f.path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmake_cas::Digest;
    use rmake_proto::exec::CommandLine;

    fn base() -> ActionSpec {
        ActionSpec {
            input_root: Digest::of(b""),
            inputs: vec![],
            working_dir: String::new(),
            lines: vec![CommandLine {
                command: "true".into(),
                ignore_errors: false,
            }],
            oneshell: false,
            shell: "/bin/sh".into(),
            shell_flags: "-c".into(),
            env: vec![],
            outputs: vec!["out/a.o".into()],
            platform: Default::default(),
            timeout_secs: None,
        }
    }

    #[test]
    fn good_and_bad_paths() {
        assert_eq!(spec(&base()), Ok(()));
        let mut s = base();
        s.working_dir = "sub/dir".into();
        assert_eq!(spec(&s), Ok(()));
        for bad in ["/etc/passwd", "../x", "a/../b", "a//b", "a/", "./a", ""] {
            let mut s = base();
            s.outputs = vec![bad.into()];
            let err = spec(&s).err().unwrap_or_default();
            assert!(err.contains("output"), "{bad:?}: {err}");
            let mut s = base();
            s.inputs = vec![OutputFile {
                path: bad.into(),
                digest: Digest::of(b"x"),
                executable: false,
            }];
            assert!(spec(&s).is_err(), "{bad:?}");
        }
        let mut s = base();
        s.working_dir = "../up".into();
        assert!(spec(&s).err().unwrap_or_default().contains("working_dir"));
    }
}
