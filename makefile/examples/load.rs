//! `cargo run -p rmake-makefile --example load -- [-f FILE] [VAR=value...]`: load a makefile from the
//! current directory and print what parsing printed, the error if any, and a summary of the database.
//! A development aid for comparing the language half with GNU make.

#[path = "../tests/support/dirhost.rs"]
mod dirhost;

use dirhost::{error_text, DirHost};
use rmake_makefile::{Database, LoadOptions};

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
    let mut h = DirHost::new(&dir);
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
            eprint!("{}", error_text(&e));
            std::process::exit(2);
        }
    }
}
