//! Make-style argument normalisation: combined short flags, optional `-j N`, `VAR=value` anywhere.
//!
//! GNU make's command line is getopt-like with two quirks clap does not model: options whose
//! argument is optional but may still be the next word when it is a number (`-j 4`, `-l 2`), and
//! `VAR=value` words mixed with goals. This module rewrites argv into a canonical token list that
//! the clap definition in `args.rs` parses (options first, then `--`, then the plain words), and
//! produces make's own wording for bad options.

use std::fmt;

/// How an option takes its argument.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ArgKind {
    /// A plain flag.
    None,
    /// A required argument: rest of the cluster, or the next word.
    Required,
    /// An optional argument: rest of the cluster, or the next word if it is a number (`-j 4`).
    OptionalNumber,
    /// An optional argument only when attached (`-Onone`, `--debug=b`).
    OptionalAttached,
}

/// One option: its short letter (if any), its long names, and the canonical long name clap knows.
struct OptSpec {
    short: Option<char>,
    longs: &'static [&'static str],
    canonical: &'static str,
    kind: ArgKind,
}

const fn opt(
    short: Option<char>,
    longs: &'static [&'static str],
    canonical: &'static str,
    kind: ArgKind,
) -> OptSpec {
    OptSpec { short, longs, canonical, kind }
}

/// make 4.3's options, plus rmake's own (`--local`, `--coordinator`, `--token`, `--download`,
/// `--explain`).
static OPTIONS: &[OptSpec] = &[
    opt(Some('b'), &[], "ignored-b", ArgKind::None),
    opt(Some('m'), &[], "ignored-b", ArgKind::None),
    opt(Some('B'), &["always-make"], "always-make", ArgKind::None),
    opt(Some('C'), &["directory"], "directory", ArgKind::Required),
    opt(Some('d'), &[], "debug-all", ArgKind::None),
    opt(None, &["debug"], "debug", ArgKind::OptionalAttached),
    opt(Some('e'), &["environment-overrides"], "environment-overrides", ArgKind::None),
    opt(Some('E'), &["eval"], "eval", ArgKind::Required),
    opt(Some('f'), &["file", "makefile"], "file", ArgKind::Required),
    opt(Some('h'), &["help"], "help", ArgKind::None),
    opt(Some('i'), &["ignore-errors"], "ignore-errors", ArgKind::None),
    opt(Some('I'), &["include-dir"], "include-dir", ArgKind::Required),
    opt(Some('j'), &["jobs"], "jobs", ArgKind::OptionalNumber),
    opt(Some('k'), &["keep-going"], "keep-going", ArgKind::None),
    opt(Some('l'), &["load-average", "max-load"], "load-average", ArgKind::OptionalNumber),
    opt(Some('L'), &["check-symlink-times"], "check-symlink-times", ArgKind::None),
    opt(Some('n'), &["just-print", "dry-run", "recon"], "just-print", ArgKind::None),
    opt(Some('o'), &["old-file", "assume-old"], "old-file", ArgKind::Required),
    opt(Some('O'), &["output-sync"], "output-sync", ArgKind::OptionalAttached),
    opt(Some('p'), &["print-data-base"], "print-data-base", ArgKind::None),
    opt(Some('q'), &["question"], "question", ArgKind::None),
    opt(Some('r'), &["no-builtin-rules"], "no-builtin-rules", ArgKind::None),
    opt(Some('R'), &["no-builtin-variables"], "no-builtin-variables", ArgKind::None),
    opt(Some('s'), &["silent", "quiet"], "silent", ArgKind::None),
    opt(None, &["no-silent"], "no-silent", ArgKind::None),
    opt(Some('S'), &["no-keep-going", "stop"], "no-keep-going", ArgKind::None),
    opt(Some('t'), &["touch"], "touch", ArgKind::None),
    opt(None, &["trace"], "trace", ArgKind::None),
    opt(Some('v'), &["version"], "version", ArgKind::None),
    opt(Some('w'), &["print-directory"], "print-directory", ArgKind::None),
    opt(None, &["no-print-directory"], "no-print-directory", ArgKind::None),
    opt(Some('W'), &["what-if", "new-file", "assume-new"], "what-if", ArgKind::Required),
    opt(None, &["warn-undefined-variables"], "warn-undefined-variables", ArgKind::None),
    opt(None, &["jobserver-auth", "jobserver-fds"], "jobserver-auth", ArgKind::Required),
    opt(None, &["local"], "local", ArgKind::None),
    opt(None, &["coordinator"], "coordinator", ArgKind::Required),
    opt(None, &["token"], "token", ArgKind::Required),
    opt(None, &["download"], "download", ArgKind::Required),
    opt(None, &["explain"], "explain", ArgKind::OptionalAttached),
];

/// A command line make would refuse, in make's words (without the program prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgError {
    /// `-x`
    InvalidShort(char),
    /// `--bad`
    Unrecognized(String),
    /// `-f` at the end
    MissingShort(char),
    /// `--file` at the end
    MissingLong(String),
    /// `-jx`
    NotPositive(char),
    /// `--local=x`
    NoArgAllowed(String),
    /// `-C ''`, `--debug=`: the option as make names it (`-C`, `--debug`)
    EmptyString(String),
}

impl std::error::Error for ArgError {}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::InvalidShort(c) => write!(f, "invalid option -- '{c}'"),
            ArgError::Unrecognized(s) => write!(f, "unrecognized option '{s}'"),
            ArgError::MissingShort(c) => write!(f, "option requires an argument -- '{c}'"),
            ArgError::MissingLong(s) => write!(f, "option '{s}' requires an argument"),
            ArgError::NotPositive(c) => {
                write!(f, "the '-{c}' option requires a positive integer argument")
            }
            ArgError::NoArgAllowed(s) => write!(f, "option '{s}' doesn't allow an argument"),
            ArgError::EmptyString(s) => write!(f, "the '{s}' option requires a non-empty string argument"),
        }
    }
}

/// argv after normalisation.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// Options as canonical `--name` / `--name=value` tokens, in command-line order.
    pub options: Vec<String>,
    /// Non-option words (goals and variable assignments), in order.
    pub words: Vec<String>,
}

fn is_number(s: &str, allow_dot: bool) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || (allow_dot && c == '.'))
}

/// make's checks of an option's argument: a string must not be empty, `-j` needs a number
/// above zero (`-j0`, `--jobs=x`).
fn check_value(spec: &OptSpec, value: Option<&str>) -> Result<(), ArgError> {
    let Some(v) = value else { return Ok(()) };
    if spec.canonical == "jobs" {
        if !is_number(v, false) || v.parse::<u64>().is_ok_and(|n| n == 0) {
            return Err(ArgError::NotPositive('j'));
        }
        return Ok(());
    }
    let make_string = matches!(spec.kind, ArgKind::Required | ArgKind::OptionalAttached)
        && !matches!(spec.canonical, "coordinator" | "token" | "download" | "output-sync" | "explain");
    if make_string && v.is_empty() {
        return Err(ArgError::EmptyString(match spec.short {
            Some(c) => format!("-{c}"),
            None => format!("--{}", spec.canonical),
        }));
    }
    Ok(())
}

fn find_short(c: char) -> Option<&'static OptSpec> {
    OPTIONS.iter().find(|o| o.short == Some(c))
}

fn find_long(name: &str) -> Result<&'static OptSpec, ArgError> {
    if let Some(o) = OPTIONS.iter().find(|o| o.longs.contains(&name)) {
        return Ok(o);
    }
    // getopt_long accepts unambiguous prefixes.
    let matches: Vec<&OptSpec> = OPTIONS
        .iter()
        .filter(|o| o.longs.iter().any(|l| l.starts_with(name)))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        _ => Err(ArgError::Unrecognized(format!("--{name}"))),
    }
}

/// Rewrites make's argv (without argv[0]) into canonical tokens.
pub fn normalize(args: &[String]) -> Result<Normalized, ArgError> {
    let mut out = Normalized::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            out.words.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let spec = find_long(name)?;
            let value = match (spec.kind, value) {
                (ArgKind::None, Some(_)) => {
                    return Err(ArgError::NoArgAllowed(format!("--{}", spec.canonical)))
                }
                (ArgKind::None, None) => None,
                (ArgKind::Required, Some(v)) => Some(v),
                (ArgKind::Required, None) => match args.get(i) {
                    Some(v) => {
                        i += 1;
                        Some(v.clone())
                    }
                    None => return Err(ArgError::MissingLong(format!("--{name}"))),
                },
                (ArgKind::OptionalNumber, Some(v)) => Some(v),
                (ArgKind::OptionalNumber, None) => match args.get(i) {
                    Some(v) if takes_next(spec, v) => {
                        i += 1;
                        Some(v.clone())
                    }
                    _ => None,
                },
                (ArgKind::OptionalAttached, v) => v,
            };
            check_value(spec, value.as_deref())?;
            push_option(&mut out, spec, value);
            continue;
        }
        if arg.len() > 1 && arg.starts_with('-') {
            let chars: Vec<char> = arg.chars().skip(1).collect();
            let mut k = 0;
            while k < chars.len() {
                let c = chars[k];
                k += 1;
                let spec = find_short(c).ok_or(ArgError::InvalidShort(c))?;
                let rest: String = chars[k..].iter().collect();
                match spec.kind {
                    ArgKind::None => push_option(&mut out, spec, None),
                    ArgKind::Required => {
                        let value = if !rest.is_empty() {
                            rest
                        } else if let Some(v) = args.get(i) {
                            i += 1;
                            v.clone()
                        } else {
                            return Err(ArgError::MissingShort(c));
                        };
                        check_value(spec, Some(&value))?;
                        push_option(&mut out, spec, Some(value));
                        break;
                    }
                    ArgKind::OptionalNumber => {
                        let is_load = spec.canonical == "load-average";
                        if !rest.is_empty() {
                            if !is_number(&rest, is_load) {
                                return Err(ArgError::NotPositive(c));
                            }
                            check_value(spec, Some(&rest))?;
                            push_option(&mut out, spec, Some(rest));
                            break;
                        }
                        let value = match args.get(i) {
                            Some(v) if takes_next(spec, v) => {
                                i += 1;
                                Some(v.clone())
                            }
                            _ => None,
                        };
                        check_value(spec, value.as_deref())?;
                        push_option(&mut out, spec, value);
                    }
                    ArgKind::OptionalAttached => {
                        push_option(&mut out, spec, (!rest.is_empty()).then_some(rest));
                        break;
                    }
                }
            }
            continue;
        }
        out.words.push(arg.clone());
    }
    Ok(out)
}

/// Whether an optional number is the next word: `-l` needs a number; make's `-j` takes any
/// word made only of digits, the empty word included (which it then refuses).
fn takes_next(spec: &OptSpec, word: &str) -> bool {
    if spec.canonical == "load-average" {
        is_number(word, true)
    } else {
        word.chars().all(|c| c.is_ascii_digit())
    }
}

fn push_option(out: &mut Normalized, spec: &OptSpec, value: Option<String>) {
    match value {
        Some(v) => out.options.push(format!("--{}={v}", spec.canonical)),
        None => out.options.push(format!("--{}", spec.canonical)),
    }
}

/// Whether a plain word is a variable assignment (`VAR=value`, `VAR:=value`, `VAR+=value`…).
pub fn assignment_name(word: &str) -> Option<&str> {
    let eq = word.find('=')?;
    let mut name = &word[..eq];
    for op in ["::", ":", "+", "?", "!"] {
        if let Some(n) = name.strip_suffix(op) {
            name = n;
            break;
        }
    }
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Normalized {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        normalize(&v).expect("valid")
    }

    #[test]
    fn combined_short_flags_split() {
        let n = norm(&["-kj4", "all"]);
        assert_eq!(n.options, ["--keep-going", "--jobs=4"]);
        assert_eq!(n.words, ["all"]);
    }

    #[test]
    fn jobs_takes_next_word_only_when_numeric() {
        assert_eq!(norm(&["-j", "3", "x"]).options, ["--jobs=3"]);
        let n = norm(&["-j", "all"]);
        assert_eq!(n.options, ["--jobs"]);
        assert_eq!(n.words, ["all"]);
        assert_eq!(norm(&["--jobs", "5"]).options, ["--jobs=5"]);
        assert_eq!(norm(&["-sj"]).options, ["--silent", "--jobs"]);
    }

    #[test]
    fn required_arguments_attached_or_next() {
        let n = norm(&["-Cdir", "-f", "x.mk", "-I/inc", "-o", "old", "-Wnew"]);
        assert_eq!(
            n.options,
            [
                "--directory=dir",
                "--file=x.mk",
                "--include-dir=/inc",
                "--old-file=old",
                "--what-if=new"
            ]
        );
    }

    #[test]
    fn long_aliases_and_prefixes() {
        assert_eq!(norm(&["--dry-run", "--recon", "--just"]).options, ["--just-print"; 3]);
        assert_eq!(norm(&["--makefile=a"]).options, ["--file=a"]);
    }

    #[test]
    fn words_after_double_dash() {
        let n = norm(&["-k", "--", "-x", "A=1"]);
        assert_eq!(n.words, ["-x", "A=1"]);
    }

    #[test]
    fn errors_in_make_words() {
        let v = |a: &[&str]| normalize(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(v(&["-x"]).unwrap_err().to_string(), "invalid option -- 'x'");
        assert_eq!(v(&["--badopt"]).unwrap_err().to_string(), "unrecognized option '--badopt'");
        assert_eq!(v(&["-f"]).unwrap_err().to_string(), "option requires an argument -- 'f'");
        assert_eq!(
            v(&["-jx"]).unwrap_err().to_string(),
            "the '-j' option requires a positive integer argument"
        );
    }

    // What make 4.3 printed first for each command line.
    #[test]
    fn empty_and_zero_arguments_refused() {
        let v = |a: &[&str]| normalize(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let positive = "the '-j' option requires a positive integer argument";
        for args in [&["-j0"][..], &["-j", "0"], &["--jobs=0"], &["-j", ""], &["--jobs", "00"]] {
            assert_eq!(v(args).unwrap_err().to_string(), positive, "{args:?}");
        }
        let empty = |o: &str| format!("the '{o}' option requires a non-empty string argument");
        assert_eq!(v(&["-C", ""]).unwrap_err().to_string(), empty("-C"));
        assert_eq!(v(&["--directory="]).unwrap_err().to_string(), empty("-C"));
        assert_eq!(v(&["-f", ""]).unwrap_err().to_string(), empty("-f"));
        assert_eq!(v(&["--eval="]).unwrap_err().to_string(), empty("-E"));
        assert_eq!(v(&["-W", ""]).unwrap_err().to_string(), empty("-W"));
        assert_eq!(v(&["--debug="]).unwrap_err().to_string(), empty("--debug"));
        // `-O ''` and `-l ''` leave the empty word as a goal.
        assert_eq!(v(&["-O", ""]).map(|n| n.words), Ok(vec![String::new()]));
        assert_eq!(v(&["-l", ""]).map(|n| n.words), Ok(vec![String::new()]));
        assert_eq!(norm(&["-j", "2"]).options, ["--jobs=2"]);
    }

    #[test]
    fn assignments_recognised() {
        assert_eq!(assignment_name("A=1"), Some("A"));
        assert_eq!(assignment_name("B:=x y"), Some("B"));
        assert_eq!(assignment_name("C+=3"), Some("C"));
        assert_eq!(assignment_name("all"), None);
        assert_eq!(assignment_name("=x"), None);
    }
}
