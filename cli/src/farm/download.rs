//! Writing a farm's outputs into the client's tree: each file downloaded next to its place and
//! renamed over it, so a reader never sees half a file, with its executable bit; its mtime is
//! the time of writing, later than its prerequisites', as make would leave it.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use anyhow::Context;
use rmake_proto::{CoordinatorClient, OutputFile};

use crate::farm::tree::PathMap;

/// Downloads `files` (root-relative) into the tree.
pub async fn fetch(client: &CoordinatorClient, map: &PathMap, files: &[OutputFile]) -> anyhow::Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let pid = std::process::id();
    let mut temps: Vec<(rmake_cas::Digest, PathBuf)> = Vec::with_capacity(files.len());
    let mut places = Vec::with_capacity(files.len());
    for f in files {
        let dest = map.abs(&f.path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dest.with_file_name(format!(".{name}.rmake-{pid}.tmp"));
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
        let mode = if executable { 0o755 } else { 0o644 };
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", dest.display()))?;
        if let Ok(meta) = std::fs::symlink_metadata(&dest) {
            if meta.is_dir() {
                let _ = std::fs::remove_file(&tmp);
                anyhow::bail!("{} is a directory here", dest.display());
            }
        }
        std::fs::rename(&tmp, &dest).with_context(|| format!("writing {}", dest.display()))?;
    }
    Ok(())
}

/// Creates the directories a recipe made (root-relative), as make would have left them.
pub fn make_dirs(map: &PathMap, dirs: &[String]) -> anyhow::Result<()> {
    for d in dirs {
        let p = map.abs(d);
        std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
    }
    Ok(())
}
