//! Snapshot and materialize: round trips, modes, symlinks, ignore rules, the index, and hostile trees.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use rmake_cas::index::RACY_WINDOW;
use rmake_cas::tree::{put_directory, read_directory};
use rmake_cas::{
    diff, flatten, materialize, snapshot, BlobStore, CasError, Change, Digest, Directory,
    DiskStore, Entry, Ignore, Index, MaterializeOptions, MemoryStore, Node,
};

use crate::util::entries;

/// A small source tree with every kind of entry.
fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("src/sub")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::write(root.join("Makefile"), "all:\n\techo hi\n").unwrap();
    fs::write(root.join("src/main.c"), "int main(){return 0;}\n").unwrap();
    fs::write(root.join("src/sub/deep.h"), "#define X 1\n").unwrap();
    fs::write(root.join("src/dup.c"), "int main(){return 0;}\n").unwrap();
    fs::write(root.join("run.sh"), "#!/bin/sh\necho run\n").unwrap();
    fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(root.join("empty.txt"), "").unwrap();
    symlink("src/main.c", root.join("link-to-main")).unwrap();
    symlink("sub", root.join("src/sublink")).unwrap();
    symlink("../Makefile", root.join("src/up")).unwrap();
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn snapshot_materialize_snapshot_gives_the_same_root() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src-tree");
    make_tree(&src);
    let store = DiskStore::open(tmp.path().join("cas")).unwrap();
    let snap = snapshot(&src, &store, &mut Index::in_memory(), &Ignore::new()).unwrap();
    assert_eq!(snap.stats.files, 6);
    assert_eq!(snap.stats.symlinks, 3);
    assert_eq!(snap.stats.dirs, 4);
    assert!(snap.skipped.is_empty());

    let out = tmp.path().join("out");
    let stats = materialize(&store, &snap.root, &out, MaterializeOptions::default()).unwrap();
    assert_eq!(
        stats.linked, 5,
        "non-executable files hard-linked from the same-fs store"
    );
    assert_eq!(stats.copied, 1, "the executable is copied");
    assert_eq!(
        fs::read_to_string(out.join("src/sub/deep.h")).unwrap(),
        "#define X 1\n"
    );
    assert_eq!(fs::read(out.join("empty.txt")).unwrap(), b"");
    assert!(out.join("empty").is_dir());
    assert_eq!(mode(&out.join("run.sh")), 0o755);
    assert_eq!(
        fs::read_link(out.join("src/sublink")).unwrap(),
        Path::new("sub")
    );
    assert_eq!(
        fs::read_to_string(out.join("link-to-main")).unwrap(),
        "int main(){return 0;}\n"
    );

    let again = snapshot(&out, &store, &mut Index::in_memory(), &Ignore::new()).unwrap();
    assert_eq!(again.root, snap.root);

    // Copies instead of links, into a memory store and back.
    let mem = MemoryStore::new();
    let snap2 = snapshot(&src, &mem, &mut Index::in_memory(), &Ignore::new()).unwrap();
    assert_eq!(snap2.root, snap.root);
    let out2 = tmp.path().join("out2");
    let stats = materialize(&mem, &snap.root, &out2, MaterializeOptions::default()).unwrap();
    assert_eq!((stats.linked, stats.copied), (0, 6));
    assert_eq!(mode(&out2.join("run.sh")), 0o755);
    assert_eq!(mode(&out2.join("Makefile")), 0o644);
    assert_eq!(
        snapshot(&out2, &mem, &mut Index::in_memory(), &Ignore::new())
            .unwrap()
            .root,
        snap.root
    );
}

#[test]
fn executable_bit_changes_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    make_tree(tmp.path());
    let store = MemoryStore::new();
    let a = snapshot(tmp.path(), &store, &mut Index::in_memory(), &Ignore::new())
        .unwrap()
        .root;
    fs::set_permissions(tmp.path().join("run.sh"), fs::Permissions::from_mode(0o644)).unwrap();
    let b = snapshot(tmp.path(), &store, &mut Index::in_memory(), &Ignore::new())
        .unwrap()
        .root;
    assert_ne!(a, b);
    let changes = diff(&flatten(&store, &a).unwrap(), &flatten(&store, &b).unwrap());
    let paths: Vec<&str> = changes.iter().map(Change::path).collect();
    assert_eq!(paths, ["run.sh"]);
}

#[test]
fn ignore_rules_and_store_dirs_are_left_out() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    make_tree(root);
    fs::create_dir_all(root.join(".git/objects")).unwrap();
    fs::write(root.join(".git/HEAD"), "ref").unwrap();
    fs::write(root.join("src/main.o"), "obj").unwrap();
    fs::create_dir_all(root.join("build")).unwrap();
    fs::write(root.join("build/x"), "x").unwrap();
    fs::write(root.join(".rmakeignore"), "# objects\n*.o\nbuild/\n").unwrap();
    let store = DiskStore::open(root.join(".rmake/cas")).unwrap();
    let mut ignore = Ignore::for_root(root).unwrap();
    ignore.exclude_abs(root, &root.join(".rmake"));
    let snap = snapshot(root, &store, &mut Index::in_memory(), &ignore).unwrap();
    let paths: Vec<String> = flatten(&store, &snap.root)
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    for gone in [
        ".git",
        ".git/HEAD",
        "src/main.o",
        "build",
        "build/x",
        ".rmake",
    ] {
        assert!(
            !paths.iter().any(|p| p == gone),
            "{gone} should be ignored: {paths:?}"
        );
    }
    assert!(paths.iter().any(|p| p == ".rmakeignore"));
    assert!(paths.iter().any(|p| p == "src/main.c"));
}

#[test]
fn index_avoids_rehashing_and_sees_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("t");
    make_tree(&root);
    for i in 0..50 {
        fs::write(root.join(format!("src/gen{i}.c")), format!("int f{i};\n")).unwrap();
    }
    // Let every file leave the racy window so the first scan's stamps are trusted.
    std::thread::sleep(RACY_WINDOW + Duration::from_millis(100));
    let store = MemoryStore::new();
    let index_path = tmp.path().join("index");
    let mut index = Index::load(&index_path).unwrap();
    let first = snapshot(&root, &store, &mut index, &Ignore::new()).unwrap();
    assert_eq!(first.stats.hashed, 56);
    index.save().unwrap();

    // A fresh process: the loaded index vouches for every file.
    let mut index = Index::load(&index_path).unwrap();
    let second = snapshot(&root, &store, &mut index, &Ignore::new()).unwrap();
    assert_eq!(second.root, first.root);
    assert_eq!(index.hashes(), 0);
    assert_eq!(second.stats.uploaded_blobs, 0);

    // One changed file is re-hashed, and only it.
    fs::write(root.join("src/gen7.c"), "int changed;\n").unwrap();
    let third = snapshot(&root, &store, &mut index, &Ignore::new()).unwrap();
    assert_eq!(third.stats.hashed, 1);
    assert_ne!(third.root, first.root);
    assert_eq!(
        store.get(&Digest::of(b"int changed;\n")).unwrap().unwrap(),
        b"int changed;\n"
    );
    // A deleted file is dropped from the index.
    let before = index.len();
    fs::remove_file(root.join("src/gen8.c")).unwrap();
    snapshot(&root, &store, &mut index, &Ignore::new()).unwrap();
    assert_eq!(index.len(), before - 1);
}

#[test]
fn escaping_symlinks_are_left_out_of_a_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("t");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("f"), "f").unwrap();
    symlink("/etc/passwd", root.join("abs")).unwrap();
    symlink("../outside", root.join("up")).unwrap();
    symlink("f", root.join("ok")).unwrap();
    let store = MemoryStore::new();
    let snap = snapshot(&root, &store, &mut Index::in_memory(), &Ignore::new()).unwrap();
    let mut skipped = snap.skipped.clone();
    skipped.sort();
    assert_eq!(skipped, ["abs", "up"]);
    assert_eq!(snap.stats.symlinks, 1);
}

/// Hand-encodes a directory node (bypassing `Directory`'s validation) and stores it.
fn raw_dir(store: &dyn BlobStore, entries: &[(u8, &str, &[u8])]) -> Digest {
    let mut out = b"RMTREE1\n".to_vec();
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (kind, name, payload) in entries {
        out.push(*kind);
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(payload);
    }
    store.put_bytes(&out).unwrap()
}

fn file_payload(d: &Digest) -> Vec<u8> {
    let mut p = d.hash.to_vec();
    p.extend_from_slice(&d.size.to_le_bytes());
    p
}

fn link_payload(target: &str) -> Vec<u8> {
    let mut p = (target.len() as u32).to_le_bytes().to_vec();
    p.extend_from_slice(target.as_bytes());
    p
}

#[track_caller]
fn assert_refused(store: &dyn BlobStore, root: Digest, outside: &Path) {
    let out = outside.join("out");
    let err = materialize(store, &root, &out, MaterializeOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            CasError::InvalidTree { .. } | CasError::InvalidPath { .. }
        ),
        "{err}"
    );
    assert!(!out.exists(), "nothing written for a refused tree");
    assert_eq!(
        entries(outside),
        Vec::<std::path::PathBuf>::new(),
        "nothing written outside"
    );
}

#[test]
fn materialize_refuses_hostile_trees_before_writing() {
    let store = MemoryStore::new();
    let blob = store.put_bytes(b"pwned").unwrap();
    let fp = file_payload(&blob);
    for name in ["..", "../escape", "/etc/passwd", "", ".", "a/b"] {
        let tmp = tempfile::tempdir().unwrap();
        let root = raw_dir(&store, &[(0, name, &fp)]);
        assert_refused(&store, root, tmp.path());
    }
    // A good file first, then a bad entry nested deeper: still nothing written.
    let bad_child = raw_dir(&store, &[(0, "..", &fp)]);
    let root = raw_dir(
        &store,
        &[(0, "a", &fp), (3, "d", &file_payload(&bad_child))],
    );
    assert_refused(&store, root, tempfile::tempdir().unwrap().path());
    // Escaping symlinks: absolute, climbing, and climbing through another in-tree link.
    for entries in [
        vec![(2u8, "l", link_payload("/etc"))],
        vec![(2, "l", link_payload("../../x"))],
        vec![(2, "d", link_payload(".")), (2, "x", link_payload("d/.."))],
    ] {
        let refs: Vec<(u8, &str, &[u8])> = entries
            .iter()
            .map(|(k, n, p)| (*k, *n, p.as_slice()))
            .collect();
        let root = raw_dir(&store, &refs);
        assert_refused(&store, root, tempfile::tempdir().unwrap().path());
    }
}

#[test]
fn materialize_refuses_missing_blobs_and_existing_files() {
    let store = MemoryStore::new();
    let absent = Digest::of(b"never stored");
    let root = put_directory(
        &store,
        &Directory::from_entries(vec![Entry {
            name: "f".into(),
            node: Node::File {
                digest: absent,
                executable: false,
            },
        }])
        .unwrap(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let err = materialize(
        &store,
        &root,
        &tmp.path().join("o"),
        MaterializeOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, CasError::NotFound(d) if d == absent), "{err}");
    assert!(!tmp.path().join("o").exists());

    store.put(&absent, b"never stored").unwrap();
    let out = tmp.path().join("o");
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("f"), "old").unwrap();
    assert!(materialize(&store, &root, &out, MaterializeOptions::default()).is_err());
    let opts = MaterializeOptions {
        replace_existing: true,
        ..MaterializeOptions::default()
    };
    materialize(&store, &root, &out, opts).unwrap();
    assert_eq!(fs::read(out.join("f")).unwrap(), b"never stored");
    assert!(
        read_directory(&store, &absent).is_err(),
        "a file blob is not a tree node"
    );
}
