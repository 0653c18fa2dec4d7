//! MAKEFLAGS in make 4.3's exact format: reading it from the environment and writing it for
//! recipes and sub-makes.
//!
//! make writes the single-letter flags as one word first (`ks`, or empty), then the options with
//! arguments and the long-only options (` -I/x -j4 -l3 -Onone --jobserver-auth=R,W --trace
//! --no-print-directory`), then ` -- ` and the command-line variables in reverse order, spaces
//! in values escaped with a backslash. `-o`, `-W`, `-f`, `-C`, `-S` and `-v` are not passed on.

use crate::args::{Config, Jobs};

/// Splits a MAKEFLAGS value into argv words the way make reads it: backslash escapes the next
/// character, a first word without a leading `-` is a cluster of single-letter flags.
pub fn split_env(value: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut have = false;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    have = true;
                }
            }
            ' ' | '\t' => {
                if have {
                    words.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            _ => {
                cur.push(c);
                have = true;
            }
        }
    }
    if have {
        words.push(cur);
    }
    if let Some(first) = words.first_mut() {
        if !first.starts_with('-') && !first.contains('=') {
            first.insert(0, '-');
        }
    }
    // Words after `--` are variable assignments; so are bare assignments (old formats).
    words
}

fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == ' ' || c == '\t' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Renders one command-line assignment as make shows it in MAKEFLAGS (`A=x\ y`, `B:=2`).
fn render_var(assign: &str) -> String {
    let Some(eq) = assign.find('=') else {
        return escape_value(assign);
    };
    let head = &assign[..eq];
    let value = &assign[eq + 1..];
    let (name, op) = if let Some(n) = head.strip_suffix("::") {
        (n, ":=")
    } else if let Some(n) = head.strip_suffix(':') {
        (n, ":=")
    } else if let Some(n) = head.strip_suffix('+').or_else(|| head.strip_suffix('?')) {
        (n, "=")
    } else if let Some(n) = head.strip_suffix('!') {
        (n, "=")
    } else {
        (head, "=")
    };
    // make writes a `$` of a command-line value as `$$` (the value is read back as makefile text).
    format!("{}{op}{}", escape_value(name.trim()), escape_value(value).replace('$', "$$"))
}

/// The MAKEFLAGS value make 4.3 would compute for this configuration.
/// `jobserver` is the `R,W` pair of the jobserver pipe when `-j` is more than one job.
/// `print_directory` is whether `-w` is in force (given, or implied by `-C`).
pub fn render(cfg: &Config, jobserver: Option<(i32, i32)>, print_directory: bool) -> String {
    let vars = (!cfg.vars.is_empty()).then(|| overrides(cfg));
    render_with(cfg, jobserver, print_directory, vars.as_deref())
}

/// MAKEFLAGS as make writes it after reading the makefiles: the flags, then ` -- ` and `vars`
/// (the expansion of MAKEOVERRIDES) when MAKEOVERRIDES is set, even to something expanding to
/// nothing (a sub-make inheriting `${-*-command-variables-*-}` shows a trailing ` -- `).
pub fn render_with(cfg: &Config, jobserver: Option<(i32, i32)>, print_directory: bool, vars: Option<&str>) -> String {
    let mut letters = String::new();
    let mut push = |on: bool, c: char| {
        if on {
            letters.push(c);
        }
    };
    push(cfg.always_make, 'B');
    push(cfg.env_overrides, 'e');
    push(cfg.ignore_errors, 'i');
    push(cfg.keep_going, 'k');
    push(cfg.check_symlink_times, 'L');
    push(cfg.just_print, 'n');
    push(cfg.print_data_base, 'p');
    push(cfg.question, 'q');
    push(cfg.no_builtin_rules || cfg.no_builtin_variables, 'r');
    push(cfg.no_builtin_variables, 'R');
    push(cfg.silent, 's');
    push(cfg.touch, 't');
    push(print_directory && !cfg.no_print_directory, 'w');

    let mut long = Vec::new();
    for d in &cfg.include_dirs {
        long.push(format!("-I{}", escape_value(d)));
    }
    match cfg.jobs {
        Jobs::One => {}
        Jobs::Limit(1) => long.push("-j1".into()),
        Jobs::Limit(n) => long.push(format!("-j{n}")),
        Jobs::Unlimited => long.push("-j".into()),
    }
    if let Some(l) = &cfg.load_average {
        long.push(format!("-l{l}"));
    }
    if let Some(o) = &cfg.output_sync {
        long.push(format!("-O{o}"));
    }
    if let (Jobs::Limit(n), Some((r, w))) = (cfg.jobs, jobserver) {
        if n > 1 {
            long.push(format!("--jobserver-auth={r},{w}"));
        }
    }
    for d in &cfg.debug {
        long.push(format!("--debug={d}"));
    }
    if cfg.trace {
        long.push("--trace".into());
    }
    if cfg.no_print_directory {
        long.push("--no-print-directory".into());
    }
    if cfg.warn_undefined {
        long.push("--warn-undefined-variables".into());
    }
    for e in &cfg.evals {
        long.push(format!("--eval={}", escape_value(e)));
    }

    let mut out = letters;
    for l in long {
        out.push(' ');
        out.push_str(&l);
    }
    if let Some(vars) = vars {
        out.push_str(" -- ");
        out.push_str(vars);
    }
    out
}

/// MAKEOVERRIDES: the variable part of MAKEFLAGS (after ` -- `).
pub fn overrides(cfg: &Config) -> String {
    cfg.vars.iter().rev().map(|v| render_var(v)).collect::<Vec<_>>().join(" ")
}

/// MFLAGS: like MAKEFLAGS without the variables, with a leading `-` on the letters.
pub fn mflags(makeflags: &str) -> String {
    // The variables follow ` -- ` (long options such as `--jobserver-auth` come before it).
    let flags = match makeflags.find(" -- ") {
        Some(i) => &makeflags[..i],
        None => makeflags.strip_suffix(" --").unwrap_or(makeflags),
    };
    // --eval goes to sub-makes through MAKEFLAGS only.
    let kept: Vec<&str> = flags.split(' ').filter(|w| !w.starts_with("--eval=")).collect();
    let flags = kept.join(" ");
    if flags.trim().is_empty() {
        return String::new();
    }
    if let Some(rest) = flags.strip_prefix(' ') {
        rest.to_string()
    } else {
        format!("-{flags}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(args: &[&str]) -> Config {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        Config::from_args(&v, None).expect("valid")
    }

    // Each expectation below is what GNU make 4.3 printed for `@echo "$(MAKEFLAGS)"`.
    #[test]
    fn letters_then_long_then_vars() {
        assert_eq!(render(&cfg(&["-k"]), None, false), "k");
        assert_eq!(render(&cfg(&["-kj4"]), Some((3, 4)), false), "k -j4 --jobserver-auth=3,4");
        assert_eq!(render(&cfg(&["-j"]), Some((3, 4)), false), " -j");
        assert_eq!(render(&cfg(&["FOO=bar"]), None, false), " -- FOO=bar");
        assert_eq!(render(&cfg(&["-k", "FOO=bar", "X=1"]), None, false), "k -- X=1 FOO=bar");
        assert_eq!(render(&cfg(&["-i", "-B"]), None, false), "Bi");
        assert_eq!(render(&cfg(&["-o", "x", "-W", "y"]), None, false), "");
        assert_eq!(render(&cfg(&["-r", "-R"]), None, false), "rR");
        assert_eq!(render(&cfg(&["-s", "-q"]), None, false), "qs");
        assert_eq!(render(&cfg(&["-I", "/tmp"]), None, false), " -I/tmp");
        assert_eq!(render(&cfg(&["A=x y", "B:=2"]), None, false), " -- B:=2 A=x\\ y");
        assert_eq!(render(&cfg(&["C+=3", "D?=4"]), None, false), " -- D=4 C=3");
    }

    #[test]
    fn everything_in_make_order() {
        let c = cfg(&[
            "-j4", "-l3", "-I/tmp", "-Onone", "--trace", "--no-print-directory", "-e", "-k",
            "-s", "-w", "-n", "-B", "-i", "-r", "-R", "-t", "-q", "-L",
        ]);
        assert_eq!(
            render(&c, Some((3, 4)), true),
            "BeikLnqrRst -I/tmp -j4 -l3 -Onone --jobserver-auth=3,4 --trace --no-print-directory"
        );
    }

    #[test]
    fn env_value_is_split_like_make() {
        assert_eq!(split_env("ks -- X=1"), ["-ks", "--", "X=1"]);
        assert_eq!(split_env(" -j4 --jobserver-auth=3,4"), ["-j4", "--jobserver-auth=3,4"]);
        assert_eq!(split_env(" -- A=x\\ y"), ["--", "A=x y"]);
    }

    #[test]
    fn mflags_and_overrides() {
        assert_eq!(mflags("k -- X=1"), "-k");
        assert_eq!(mflags(" -j4 --jobserver-auth=3,4"), "-j4 --jobserver-auth=3,4");
        assert_eq!(mflags(" -- A=1"), "");
        assert_eq!(
            mflags("ks -j3 --jobserver-auth=3,4 --no-print-directory -- X=1"),
            "-ks -j3 --jobserver-auth=3,4 --no-print-directory"
        );
        assert_eq!(overrides(&cfg(&["A=1", "B=2"])), "B=2 A=1");
    }

    // make 4.3: `MAKEOVERRIDES =` in the makefile drops the variables; a value set but expanding
    // to nothing leaves ` -- ` (MAKEFLAGS= $(MAKE) after `make -k X=1`).
    #[test]
    fn overrides_from_the_makefile() {
        let c = cfg(&["-k", "X=1"]);
        assert_eq!(render_with(&c, None, false, None), "k");
        assert_eq!(render_with(&c, None, false, Some("Y=2")), "k -- Y=2");
        assert_eq!(render_with(&cfg(&["--no-print-directory"]), None, false, Some("")), " --no-print-directory -- ");
    }
}
