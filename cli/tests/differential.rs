//! Differential tests of the local executor: the same tree is built by GNU make and by
//! `rmake-remote --local`, both run under the name `rmake-remote` (a symlink on PATH), and their
//! stdout, stderr, exit status and resulting files must agree. These cover what the golden
//! corpus cannot: signals, parallel jobs, sub-makes, the flags' effects on the file tree.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

const BASE: u64 = 946_684_800;

/// What one run left behind.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    stdout: String,
    stderr: String,
    /// Exit code, or 128 + signal.
    status: i32,
    files: BTreeMap<String, String>,
}

/// A test tree and a command line, run under both implementations.
#[must_use]
struct Diff {
    files: Vec<(String, String)>,
    args: Vec<String>,
    /// Send this signal this long after starting.
    term_after: Option<(Duration, &'static str)>,
    /// Compare stdout lines as a multiset (parallel output).
    unordered: bool,
    /// Shell lines run in the tree before the build.
    setup: Vec<String>,
}

impl Diff {
    fn new() -> Diff {
        Diff { files: Vec::new(), args: Vec::new(), term_after: None, unordered: false, setup: Vec::new() }
    }

    fn file(mut self, path: &str, text: &str) -> Diff {
        self.files.push((path.to_string(), text.to_string()));
        self
    }

    fn args(mut self, args: &[&str]) -> Diff {
        self.args = args.iter().map(|s| s.to_string()).collect();
        self
    }

    fn setup(mut self, line: &str) -> Diff {
        self.setup.push(line.to_string());
        self
    }

    fn term_after(mut self, ms: u64) -> Diff {
        self.term_after = Some((Duration::from_millis(ms), "-TERM"));
        self
    }

    fn int_after(mut self, ms: u64) -> Diff {
        self.term_after = Some((Duration::from_millis(ms), "-INT"));
        self
    }

    fn unordered(mut self) -> Diff {
        self.unordered = true;
        self
    }

    fn lay_out(&self, root: &Path) {
        for (p, text) in &self.files {
            let path = root.join(p);
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).expect("mkdir");
            }
            fs::write(&path, text).expect("write");
        }
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(BASE);
        for (p, _) in &self.files {
            let f = fs::File::options().write(true).open(root.join(p)).expect("open");
            f.set_modified(base).expect("mtime");
        }
        for line in &self.setup {
            let ok = Command::new("/bin/sh").arg("-ec").arg(line).current_dir(root).status().expect("setup");
            assert!(ok.success(), "setup failed: {line}");
        }
    }

    fn run_one(&self, program: &Path, local: bool) -> Outcome {
        let tmp = tempfile::tempdir().expect("tempdir");
        let bin = tmp.path().join("bin");
        let top = tmp.path().join("top");
        fs::create_dir_all(&bin).expect("bin");
        fs::create_dir_all(&top).expect("top");
        std::os::unix::fs::symlink(program, bin.join("rmake-remote")).expect("symlink");
        self.lay_out(&top);
        let mut cmd = Command::new("rmake-remote");
        if local {
            cmd.arg("--local");
        }
        cmd.args(&self.args)
            .current_dir(&top)
            .env_clear()
            .env("PATH", format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()))
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("spawn");
        if let Some((d, sig)) = self.term_after {
            std::thread::sleep(d);
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = Command::new("kill").arg(sig).arg(pid.to_string()).status();
            }
        }
        let out = child.wait_with_output().expect("wait");
        let status = out.status.code().unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
        let norm = |b: &[u8]| String::from_utf8_lossy(b).replace(&top.display().to_string(), "<TOP>");
        let mut files = BTreeMap::new();
        collect(&top, &top, &mut files);
        Outcome { stdout: norm(&out.stdout), stderr: norm(&out.stderr), status, files }
    }

    #[track_caller]
    fn check(self) {
        let make = PathBuf::from("/usr/bin/make");
        if !make.exists() {
            eprintln!("GNU make not installed: skipping");
            return;
        }
        let ours = PathBuf::from(env!("CARGO_BIN_EXE_rmake-remote"));
        let mut want = self.run_one(&make, false);
        let mut got = self.run_one(&ours, true);
        if self.unordered {
            for o in [&mut want, &mut got] {
                let mut lines: Vec<&str> = o.stdout.lines().collect();
                lines.sort_unstable();
                o.stdout = lines.join("\n");
            }
        }
        assert_eq!(got, want, "rmake-remote (left) differs from GNU make (right) for {:?}", self.args);
    }
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let rel = p.strip_prefix(root).map(|r| r.display().to_string()).unwrap_or_default();
        if p.is_dir() {
            out.insert(format!("{rel}/"), String::new());
            collect(root, &p, out);
        } else {
            out.insert(rel, fs::read_to_string(&p).unwrap_or_else(|_| "<binary>".into()));
        }
    }
}

#[test]
fn sigterm_deletes_the_target_being_made() {
    Diff::new()
        .file("Makefile", "all: x\nx:\n\techo start > $@; sleep 3; echo done >> $@\n")
        .term_after(700)
        .check();
}

#[test]
fn sigint_to_make_alone_waits_for_the_recipe_then_deletes() {
    Diff::new()
        .file("Makefile", "all: x\nx:\n\techo start > $@; sleep 1; echo done >> $@\n")
        .int_after(500)
        .check();
}

#[test]
fn interrupted_build_deletes_intermediate_files() {
    Diff::new()
        .file("Makefile", "all: a.x\n%.x: %.y ; sleep 2; cp $< $@\n%.y: %.z ; cp $< $@\n")
        .file("a.z", "z\n")
        .term_after(700)
        .check();
}

#[test]
fn sigterm_keeps_precious_targets() {
    Diff::new()
        .file("Makefile", ".PRECIOUS: x\nall: x\nx:\n\techo start > $@; sleep 3; echo done >> $@\n")
        .term_after(700)
        .check();
}

#[test]
fn failure_in_parallel_waits_for_unfinished_jobs() {
    Diff::new()
        .file("Makefile", "all: x y\nx: ; sleep 0.3; false\ny: ; sleep 1; echo y > y\n")
        .args(&["-j2"])
        .check();
}

#[test]
fn keep_going_builds_what_it_can() {
    Diff::new()
        .file("Makefile", "all: a b c\na: ; false\nb: ; echo b > b\nc: a ; echo c > c\n")
        .args(&["-k"])
        .check();
}

#[test]
fn sub_make_with_directory_and_flags() {
    Diff::new()
        .file("Makefile", "all:\n\t$(MAKE) -C sub V=1\n\t@echo top $(MAKEFLAGS)\n")
        .file("sub/Makefile", "all:\n\t@echo sub [$(MAKEFLAGS)] $(MAKELEVEL) $(V)\n")
        .args(&["-k", "X=2"])
        .check();
}

#[test]
fn dry_run_still_runs_recursive_make() {
    Diff::new()
        .file("Makefile", "all:\n\t$(MAKE) -C sub\n\ttouch top\n")
        .file("sub/Makefile", "all:\n\ttouch made\n")
        .args(&["-n"])
        .check();
}

#[test]
fn intermediate_files_are_removed_after_the_build() {
    Diff::new()
        .file("Makefile", "all: a.x\n%.x: %.y ; cp $< $@\n%.y: %.z ; cp $< $@\n")
        .file("a.z", "z\n")
        .check();
}

#[test]
fn delete_on_error_removes_the_half_made_target() {
    Diff::new()
        .file("Makefile", ".DELETE_ON_ERROR:\nout: ; echo partial > $@; false\n")
        .check();
}

#[test]
fn touch_mode_creates_and_touches() {
    Diff::new()
        .file("Makefile", "all: a b\na: ; echo a > a\nb: ; echo b > b\n")
        .args(&["-t"])
        .check();
}

#[test]
fn question_mode_exit_status() {
    Diff::new().file("Makefile", "x: ; touch x\n").args(&["-q"]).check();
    Diff::new().file("Makefile", "x: ; touch x\n").file("x", "").args(&["-q", "x"]).check();
}

#[test]
fn included_makefile_is_remade_and_read_again() {
    Diff::new()
        .file("Makefile", "include gen.mk\nall: ; @echo X=$(X)\ngen.mk: ; echo X=1 > $@\n")
        .check();
}

#[test]
fn print_directory_rules() {
    Diff::new().file("sub/Makefile", "all: ; @echo in sub\n").args(&["-C", "sub"]).check();
    Diff::new().file("sub/Makefile", "all: ; @echo in sub\n").args(&["-s", "-C", "sub"]).check();
    Diff::new().file("Makefile", "all: ; @echo hi\n").args(&["-w"]).check();
    Diff::new().file("sub/Makefile", "all: ; @echo in sub\n").args(&["--no-print-directory", "-C", "sub"]).check();
}

#[test]
fn parallel_jobs_run_together() {
    Diff::new()
        .file("Makefile", "all: a b\na b:\n\t@touch $@.started; i=0; while [ ! -f $(if $(filter a,$@),b,a).started ] && [ $$i -lt 30 ]; do sleep 0.1; i=$$((i+1)); done; echo $@ done\n")
        .args(&["-j2"])
        .unordered()
        .check();
}

#[test]
fn command_not_found_and_ignored_errors() {
    Diff::new()
        .file("Makefile", "all:\n\t-no-such-command-xyz\n\t-false\n\t@echo after\n")
        .check();
}

#[test]
fn missing_directory_for_dash_c() {
    Diff::new().args(&["-C", "nowhere"]).check();
}

#[test]
fn bad_option_is_reported() {
    let make = Diff::new().args(&["--no-such-option"]);
    // Only the first line and the status are compared: the usage text lists rmake's own options too.
    let ours = make.run_one(Path::new(env!("CARGO_BIN_EXE_rmake-remote")), true);
    assert_eq!(ours.status, 2);
    assert_eq!(ours.stderr.lines().next(), Some("rmake-remote: unrecognized option '--no-such-option'"));
}

/// Option errors that print the usage text: the first line, the second line (`Usage: …`), an
/// empty stdout and the status must be make's; the rest of the usage text is our own.
#[test]
fn option_errors_match_make_up_to_the_usage_text() {
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_rmake-remote"));
    let make = PathBuf::from("/usr/bin/make");
    if !make.exists() {
        eprintln!("GNU make not installed: skipping");
        return;
    }
    let cases: &[&[&str]] = &[
        &["-j0"],
        &["-j", "0"],
        &["--jobs=0"],
        &["-j", ""],
        &["-jx"],
        &["-C", ""],
        &["--directory="],
        &["-f", ""],
        &["-I", ""],
        &["-o", ""],
        &["-W", ""],
        &["--eval="],
        &["--debug="],
        &["-x"],
        &["-kx"],
        &["--bogus"],
        &["-f"],
        &["--trace=1"],
    ];
    let head = |o: &Outcome| -> (i32, String, Vec<String>) {
        (o.status, o.stdout.clone(), o.stderr.lines().take(2).map(str::to_string).collect())
    };
    for args in cases {
        let d = Diff::new().args(args);
        let (want, got) = (d.run_one(&make, false), d.run_one(&ours, true));
        assert_eq!(head(&got), head(&want), "{args:?}");
        assert!(got.stderr.lines().nth(1).is_some_and(|l| l.starts_with("Usage: rmake-remote")), "{args:?}");
    }
}

#[test]
fn old_and_new_file_flags() {
    Diff::new()
        .file("Makefile", "out: in ; cp in out\n")
        .file("in", "1\n")
        .file("out", "0\n")
        .args(&["-W", "in"])
        .check();
    Diff::new()
        .file("Makefile", "out: in ; cp in out\nin: ; echo new > in\n")
        .args(&["-o", "in", "out"])
        .setup("touch in")
        .check();
}

#[test]
fn version_names_gnu_make() {
    let out = Command::new(env!("CARGO_BIN_EXE_rmake-remote")).arg("--version").output().expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("GNU Make 4.3"));
}

#[test]
fn deep_dependency_chains_do_not_overflow() {
    let mut mk = String::from("all: t0\n");
    for i in 0..20_000 {
        mk.push_str(&format!("t{i}: t{}\n", i + 1));
    }
    mk.push_str("t20000: ; @echo bottom\n");
    Diff::new().file("Makefile", &mk).args(&["-s"]).check();
}

#[test]
fn output_sync_groups_each_targets_output() {
    Diff::new()
        .file("Makefile", "all: a b\na: ; @echo a1; sleep 0.4; echo a2\nb: ; @sleep 0.1; echo b1; echo b2 >&2; sleep 0.4; echo b3\n")
        .args(&["-j2", "-Otarget"])
        .check();
}

#[test]
fn jobserver_reaches_only_recursive_commands() {
    Diff::new()
        .file("Makefile", "all: a b\na:\n\t+@$(MAKE) -s -f sub.mk\nb:\n\t@M=rmake-remote; $$M -s -f sub.mk\n")
        .file("sub.mk", "x: ; @echo sub [$(filter -j%,$(MAKEFLAGS))]\n")
        .args(&["-j2"])
        .unordered()
        .check();
}

/// A `$` in a command-line value: doubled in MAKEFLAGS as make writes it, read back once by the
/// sub-make.
#[test]
fn dollar_in_command_line_value_reaches_sub_make() {
    Diff::new()
        .file(
            "Makefile",
            "ifeq ($(MAKELEVEL),0)\nall: ; @echo '[$(MAKEFLAGS)]'; $(MAKE) --no-print-directory\nelse\nall: ; @echo '[$(MAKEFLAGS)] [$(A)] [$(value A)] [$(origin A)]'\nendif\n",
        )
        .args(&["A=a$$b", "B=x y"])
        .check();
}
