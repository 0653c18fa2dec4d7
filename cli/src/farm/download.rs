//! Writing a farm's outputs into the client's tree: each file downloaded next to its place and
//! renamed over it, so a reader never sees half a file, with its executable bit; its mtime is
//! the time of writing, later than its prerequisites', as make would leave it. Small files whose
//! contents came with the result are written without a request.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rmake_proto::exec::InlineFile;
use rmake_proto::{CoordinatorClient, OutputFile};

use crate::farm::tree::PathMap;

/// Downloads `files` (root-relative) into the tree.
pub async fn fetch(client: &CoordinatorClient, map: &PathMap, files: &[OutputFile]) -> anyhow::Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let mut temps: Vec<(rmake_cas::Digest, PathBuf)> = Vec::with_capacity(files.len());
    let mut places = Vec::with_capacity(files.len());
    for f in files {
        let (tmp, dest) = temp_for(map, &f.path)?;
        temps.push((f.digest, tmp.clone()));
        places.push((tmp, dest, f.executable));
    }
    let result = client.download_paths(&temps, 8).await;
    if let Err(e) = result {
        for (tmp, _, _) in &places {
            let _ = std::fs::remove_file(tmp);
        }
        return Err(e.into());
    }
    for (tmp, dest, executable) in places {
        place(&tmp, &dest, executable)?;
    }
    Ok(())
}

/// Writes the `files` whose contents came with the result (`inline`, each checked against its
/// digest) straight into the tree, without a request; returns the files still to download.
pub fn write_inline(map: &PathMap, files: &[OutputFile], inline: &[InlineFile]) -> anyhow::Result<Vec<OutputFile>> {
    if inline.is_empty() {
        return Ok(files.to_vec());
    }
    let verified: HashMap<rmake_cas::Digest, &str> = inline
        .iter()
        .filter(|i| rmake_cas::Digest::of(i.text.as_bytes()) == i.digest)
        .map(|i| (i.digest, i.text.as_str()))
        .collect();
    let mut rest = Vec::new();
    for f in files {
        let Some(text) = verified.get(&f.digest) else {
            rest.push(f.clone());
            continue;
        };
        let (tmp, dest) = temp_for(map, &f.path)?;
        if let Err(e) = std::fs::write(&tmp, text.as_bytes()) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("writing {}", tmp.display()));
        }
        place(&tmp, &dest, f.executable)?;
    }
    Ok(rest)
}

/// The temporary name next to the place of `rel` (its directory created), and the place.
fn temp_for(map: &PathMap, rel: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dest = map.abs(rel);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dest.with_file_name(format!(".{name}.rmake-{}.tmp", std::process::id()));
    Ok((tmp, dest))
}

/// Gives the written `tmp` its mode and renames it over `dest`.
fn place(tmp: &Path, dest: &Path, executable: bool) -> anyhow::Result<()> {
    let mode = if executable { 0o755 } else { 0o644 };
    let fail = |e: anyhow::Error| {
        let _ = std::fs::remove_file(tmp);
        e
    };
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", dest.display()))
        .map_err(fail)?;
    if let Ok(meta) = std::fs::symlink_metadata(dest) {
        if meta.is_dir() {
            return Err(fail(anyhow::anyhow!("{} is a directory here", dest.display())));
        }
    }
    std::fs::rename(tmp, dest).with_context(|| format!("writing {}", dest.display())).map_err(fail)
}

/// Creates the directories a recipe made (root-relative), as make would have left them.
pub fn make_dirs(map: &PathMap, dirs: &[String]) -> anyhow::Result<()> {
    for d in dirs {
        let p = map.abs(d);
        std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmake_cas::Digest;

    fn out(path: &str, data: &[u8], executable: bool) -> OutputFile {
        OutputFile { path: path.into(), digest: Digest::of(data), executable }
    }

    #[test]
    fn inline_contents_are_written_checked_and_the_rest_is_left_to_fetch() {
        let dir = tempfile::tempdir().unwrap();
        let map = PathMap { root: dir.path().to_path_buf(), cwd_rel: String::new() };
        std::fs::write(dir.path().join("a.txt"), "old\n").unwrap();
        let files = [
            out("a.txt", b"new a\n", false),
            out("sub/run.sh", b"#!/bin/sh\n", true),
            out("lied.txt", b"real\n", false),
            out("big.bin", b"not sent\n", false),
        ];
        let inline = [
            InlineFile { digest: files[0].digest, text: "new a\n".into() },
            InlineFile { digest: files[1].digest, text: "#!/bin/sh\n".into() },
            // Contents that do not hash to their digest are not trusted.
            InlineFile { digest: files[2].digest, text: "forged\n".into() },
        ];
        let rest = write_inline(&map, &files, &inline).unwrap();
        let rest: Vec<&str> = rest.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(rest, ["lied.txt", "big.bin"]);
        assert_eq!(std::fs::read_to_string(dir.path().join("a.txt")).unwrap(), "new a\n");
        let script = dir.path().join("sub/run.sh");
        assert_eq!(std::fs::read_to_string(&script).unwrap(), "#!/bin/sh\n");
        assert_eq!(std::fs::metadata(&script).unwrap().permissions().mode() & 0o777, 0o755);
        assert!(!dir.path().join("lied.txt").exists());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
}
