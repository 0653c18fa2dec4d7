//! Fuzz-style robustness tests: random bytes and random make-ish token soup through the loader and the
//! expander must never panic (errors are fine). Inputs that once broke something live in
//! `tests/corpus/` and are replayed first.

use rmake_makefile::{AutoVars, Database, LoadOptions, MemHost, Scope, ShellResult};
use std::path::Path;

/// A small deterministic PRNG (xorshift64*), so failures reproduce from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "$(",
    ")",
    "${",
    "}",
    "$",
    "$$",
    ":",
    "::",
    "&:",
    "|",
    ";",
    "=",
    ":=",
    "::=",
    "+=",
    "?=",
    "!=",
    "\n",
    "\n",
    "\n",
    "\t",
    " ",
    " ",
    "\\\n",
    "\\",
    "#",
    "ifeq",
    "ifneq",
    "ifdef",
    "ifndef",
    "else",
    "endif",
    "define",
    "endef",
    "export",
    "unexport",
    "override",
    "private",
    "undefine",
    "include",
    "-include",
    "vpath",
    "%",
    "%.o",
    "%.c",
    ",",
    "(",
    "call",
    "eval",
    "foreach",
    "if",
    "or",
    "and",
    "subst",
    "patsubst",
    "word",
    "wordlist",
    "words",
    "filter",
    "sort",
    "strip",
    "value",
    "origin",
    "flavor",
    "shell",
    "file",
    "error",
    "warning",
    "wildcard",
    "dir",
    "notdir",
    "abspath",
    "realpath",
    "join",
    "x",
    "y",
    "X",
    "Y",
    "a.c",
    "b.o",
    "*",
    "?",
    "[",
    "'",
    "\"",
    ".PHONY",
    ".SECONDEXPANSION",
    ".SUFFIXES",
    ".c.o",
    ".DEFAULT",
    ".RECIPEPREFIX",
    "@",
    "<",
    "^",
    "0",
    "1",
    "-1",
    "99999999999999999999",
    "é",
    "\r\n",
    "$(X)",
    "$(Y)",
    "$(eval $(X))",
    "$(call X,1,2)",
    "$(1)",
    "all",
    "$(call call)",
    "$(call file)",
    "$(call if)",
    "$(call foreach,a)",
    "$(call and)",
    "$(file <)",
    "$(word 0,a)",
    "$(wordlist 2,1,a)",
    "$(call $(X),",
    "${call X}",
    "$(foreach X,a b,$(X))",
    "&:",
    ".POSIX:",
    "a\\ b",
    "$(wildcard *)",
];

fn host() -> MemHost {
    let mut h = MemHost::new()
        .with_file("inc.mk", "X = 1\ny: ; @:\n")
        .with_file("a.c", "");
    h.shell_fn = Box::new(|cmd| ShellResult {
        stdout: format!("{}\n", cmd.len()),
        status: 0,
    });
    h
}

/// Load `text` as the makefile and poke at the result; any panic fails the test.
fn exercise(text: &str) {
    let mut h = host();
    h.add_file("Makefile", text);
    let opts = LoadOptions {
        cmdline_vars: vec!["C=3".into()],
        goals: vec!["all".into()],
        ..LoadOptions::default()
    };
    if let Ok((mut db, _)) = Database::load(&mut h, &opts) {
        let targets: Vec<String> = db.targets().take(3).map(str::to_string).collect();
        let refs: Vec<&str> = targets.iter().map(String::as_str).collect();
        let auto = AutoVars {
            target: "t".into(),
            stem: "s".into(),
            all: vec!["a".into()],
            ..AutoVars::default()
        };
        let scope = Scope {
            targets: &refs,
            auto: Some(&auto),
        };
        for r in db.rules.clone().iter().take(5) {
            if let Some(rc) = &r.recipe {
                for l in &rc.lines {
                    let _ = db.expand_at(&mut h, &l.text, &scope, Some(&l.loc));
                }
            }
            let _ = db.expand_prereqs(
                &mut h,
                &r.prereq_text,
                r.stem.as_deref(),
                &scope,
                Some(&r.loc),
            );
        }
        let _ = db.recipe_env(&mut h, &scope);
        let _ = db.expand(&mut h, text, &scope);
    }
}

fn run_big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no panic");
}

#[test]
fn corpus_replays() {
    run_big_stack(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for e in entries.flatten() {
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            exercise(&String::from_utf8_lossy(&bytes));
        }
    });
}

#[test]
fn random_bytes_never_panic() {
    run_big_stack(|| {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..1500 {
            let len = rng.below(200);
            let bytes: Vec<u8> = (0..len).map(|_| (rng.next() & 0xff) as u8).collect();
            exercise(&String::from_utf8_lossy(&bytes));
        }
    });
}

#[test]
fn token_soup_never_panics() {
    run_big_stack(|| {
        let seed = std::env::var("FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x1234_5678_9abc_def1u64);
        let iters = std::env::var("FUZZ_ITERS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(4000usize);
        let mut rng = Rng(seed);
        for i in 0..iters {
            let n = 1 + rng.below(60);
            let mut text = String::new();
            for _ in 0..n {
                text.push_str(TOKENS[rng.below(TOKENS.len())]);
            }
            let t = text.clone();
            if std::panic::catch_unwind(move || exercise(&t)).is_err() {
                let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
                let _ = std::fs::create_dir_all(&dir);
                let _ = std::fs::write(dir.join(format!("soup-{seed:x}-{i}.mk")), &text);
                panic!("panic on input {text:?} (saved to tests/corpus)");
            }
        }
    });
}

#[test]
fn mutated_makefiles_never_panic() {
    run_big_stack(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lang");
        let mut seeds: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "mk"))
                    .map(|e| e.path())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect();
        seeds.sort();
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        let iters = std::env::var("FUZZ_ITERS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1500usize);
        for _ in 0..iters {
            let Some(seed) = seeds.get(rng.below(seeds.len().max(1))) else {
                return;
            };
            let mut bytes = seed.as_bytes().to_vec();
            for _ in 0..1 + rng.below(4) {
                if bytes.is_empty() {
                    break;
                }
                let at = rng.below(bytes.len());
                match rng.below(3) {
                    0 => {
                        bytes.remove(at);
                    }
                    1 => {
                        let tok = TOKENS[rng.below(TOKENS.len())].as_bytes();
                        bytes.splice(at..at, tok.iter().copied());
                    }
                    _ => {
                        let end = (at + rng.below(20)).min(bytes.len());
                        let chunk: Vec<u8> = bytes[at..end].to_vec();
                        let to = rng.below(bytes.len());
                        bytes.splice(to..to, chunk);
                    }
                }
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let t = text.clone();
            if std::panic::catch_unwind(move || exercise(&t)).is_err() {
                let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
                let _ = std::fs::create_dir_all(&dir);
                let _ = std::fs::write(dir.join(format!("mutated-{}.mk", text.len())), &text);
                panic!("panic on input {text:?} (saved to tests/corpus)");
            }
        }
    });
}
