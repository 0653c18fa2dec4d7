//! `cargo run -p rmake-makefile --example load -- [-f FILE] [VAR=value...]`: load a makefile from the
//! current directory and print what parsing printed, the error if any, and a summary of the database.
//! A development aid for comparing the language half with GNU make.

use rmake_makefile::{Database, Host, LoadOptions, Mtime, ShellResult};
use std::fs;
use std::io;
use std::path::PathBuf;
use std::process::Command;

/// The real file system under one directory (tests run in parallel, so no chdir).
struct DirHost {
    dir: PathBuf,
    out: String,
    err: String,
}

impl DirHost {
    fn path(&self, p: &str) -> PathBuf {
        if p.starts_with('/') {
            PathBuf::from(p)
        } else {
            self.dir.join(p)
        }
    }
}

impl Host for DirHost {
    fn read_file(&mut self, path: &str) -> io::Result<String> {
        fs::read_to_string(self.path(path))
    }
    fn mtime(&mut self, path: &str) -> Option<Mtime> {
        let m = fs::metadata(self.path(path)).ok()?;
        let t = m
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        Some(Mtime(t.as_nanos() as i128))
    }
    fn is_dir(&mut self, path: &str) -> bool {
        self.path(path).is_dir()
    }
    fn list_dir(&mut self, dir: &str) -> io::Result<Vec<String>> {
        let mut v = Vec::new();
        for e in fs::read_dir(self.path(dir))? {
            v.push(e?.file_name().to_string_lossy().into_owned());
        }
        Ok(v)
    }
    fn shell(
        &mut self,
        cmd: &str,
        shell: &str,
        flags: &str,
        env: &[(String, String)],
    ) -> ShellResult {
        let mut c = Command::new(shell);
        for f in flags.split_whitespace() {
            c.arg(f);
        }
        c.arg(cmd)
            .current_dir(&self.dir)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)));
        match c.output() {
            Ok(o) => {
                self.err.push_str(&String::from_utf8_lossy(&o.stderr));
                ShellResult {
                    stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                    status: o.status.code().unwrap_or(2),
                }
            }
            Err(_) => ShellResult {
                stdout: String::new(),
                status: 127,
            },
        }
    }
    fn write_file(&mut self, path: &str, text: &str, append: bool) -> io::Result<()> {
        use std::io::Write;
        let mut f = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(self.path(path))?;
        f.write_all(text.as_bytes())
    }
    fn stdout(&mut self, text: &str) {
        self.out.push_str(text);
    }
    fn stderr(&mut self, text: &str) {
        self.err.push_str(text);
    }
    fn cwd(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }
    fn realpath(&mut self, path: &str) -> Option<String> {
        fs::canonicalize(self.path(path))
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    }
}

fn main() {
    let mut opts = LoadOptions {
        make_program: "make".into(),
        env: std::env::vars().collect(),
        ..LoadOptions::default()
    };
    let mut args = std::env::args().skip(1);
    let mut summary = false;
    let mut print_rules = false;
    while let Some(a) = args.next() {
        if a == "-f" {
            opts.makefiles.push(args.next().unwrap_or_default());
        } else if a == "-s" {
            summary = true;
        } else if a == "-p" {
            print_rules = true;
        } else if a == "-r" {
            opts.no_builtin_rules = true;
        } else if a.contains('=') {
            opts.cmdline_vars.push(a);
        } else {
            opts.goals.push(a);
        }
    }
    let dir = std::env::current_dir().unwrap_or_default();
    let mut h = DirHost {
        dir,
        out: String::new(),
        err: String::new(),
    };
    let t = std::time::Instant::now();
    let r = Database::load(&mut h, &opts);
    let elapsed = t.elapsed();
    print!("{}", h.out);
    eprint!("{}", h.err);
    match r {
        Ok((db, report)) => {
            if print_rules {
                // One line per target: its prerequisites merged over its rules, as `make -p` shows them.
                let mut lines = Vec::new();
                for t in db.targets() {
                    let mut normal: Vec<&str> = Vec::new();
                    let mut order: Vec<&str> = Vec::new();
                    for &i in db.rules_for(t) {
                        let r = &db.rules[i];
                        if r.loc.file.as_ref() == "<builtin>" {
                            continue;
                        }
                        for p in &r.prereqs {
                            normal.push(p);
                        }
                        for p in &r.order_only {
                            if !order.contains(&p.as_str()) {
                                order.push(p);
                            }
                        }
                    }
                    let mut l = format!("{t}: {}", normal.join(" "));
                    if !order.is_empty() {
                        l.push_str(&format!(" | {}", order.join(" ")));
                    }
                    lines.push(l.trim_end().to_string());
                }
                lines.sort();
                for l in lines {
                    println!("{l}");
                }
                // Pattern rules in search order, as `make -p` lists its implicit rules.
                for p in &db.pattern_rules {
                    let colon = if p.terminal { "::" } else { ":" };
                    println!("PATTERN {}{colon} {}", p.targets.join(" "), p.prereq_text);
                    if let Some(r) = &p.recipe {
                        for l in &r.lines {
                            println!("\t{}", l.text);
                        }
                    }
                }
            }
            if summary {
                eprintln!(
                    "loaded in {:?}: {} makefiles, {} rules, {} pattern rules, default goal {:?}",
                    elapsed,
                    report.makefiles.len(),
                    db.rules.len(),
                    db.pattern_rules.len(),
                    db.default_goal()
                );
            }
        }
        Err(e) => {
            if e.loc.is_some() {
                eprintln!("{e}");
            } else {
                eprintln!("make: {e}");
            }
            std::process::exit(2);
        }
    }
}
