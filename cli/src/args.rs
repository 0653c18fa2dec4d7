//! The clap definition of `rmake-remote`'s command line and its resolution into one `Config`.
//!
//! argv first goes through `argv::normalize` (make's getopt quirks), then through clap, then
//! `Config::from_args` merges MAKEFLAGS from the environment (parsed first, like make) with the
//! command line. What make does with each flag is in docs of the fields.

use clap::Parser;

use crate::argv::{self, ArgError};
use crate::makeflags;

/// The canonical, long-option-only command line clap parses (see `argv::normalize`).
#[derive(Parser, Debug, Default)]
#[command(name = "rmake-remote", disable_help_flag = true, disable_version_flag = true, args_override_self = true)]
pub struct RawArgs {
    #[arg(long = "ignored-b")]
    ignored_b: bool,
    #[arg(long = "always-make")]
    always_make: bool,
    #[arg(long = "directory")]
    directory: Vec<String>,
    #[arg(long = "debug-all")]
    debug_all: bool,
    #[arg(long = "debug", num_args = 0..=1, require_equals = true, default_missing_value = "a")]
    debug: Vec<String>,
    #[arg(long = "environment-overrides")]
    environment_overrides: bool,
    #[arg(long = "eval")]
    eval: Vec<String>,
    #[arg(long = "file")]
    file: Vec<String>,
    #[arg(long = "help")]
    help: bool,
    #[arg(long = "ignore-errors")]
    ignore_errors: bool,
    #[arg(long = "include-dir")]
    include_dir: Vec<String>,
    #[arg(long = "jobs", num_args = 0..=1, require_equals = true, default_missing_value = "0")]
    jobs: Vec<String>,
    #[arg(long = "keep-going")]
    keep_going: bool,
    #[arg(long = "load-average", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    load_average: Vec<String>,
    #[arg(long = "check-symlink-times")]
    check_symlink_times: bool,
    #[arg(long = "just-print")]
    just_print: bool,
    #[arg(long = "old-file")]
    old_file: Vec<String>,
    #[arg(long = "output-sync", num_args = 0..=1, require_equals = true, default_missing_value = "target")]
    output_sync: Vec<String>,
    #[arg(long = "print-data-base")]
    print_data_base: bool,
    #[arg(long = "question")]
    question: bool,
    #[arg(long = "no-builtin-rules")]
    no_builtin_rules: bool,
    #[arg(long = "no-builtin-variables")]
    no_builtin_variables: bool,
    #[arg(long = "silent")]
    silent: bool,
    #[arg(long = "no-silent")]
    no_silent: bool,
    #[arg(long = "no-keep-going")]
    no_keep_going: bool,
    #[arg(long = "touch")]
    touch: bool,
    #[arg(long = "trace")]
    trace: bool,
    #[arg(long = "version")]
    version: bool,
    #[arg(long = "print-directory")]
    print_directory: bool,
    #[arg(long = "no-print-directory")]
    no_print_directory: bool,
    #[arg(long = "what-if")]
    what_if: Vec<String>,
    #[arg(long = "warn-undefined-variables")]
    warn_undefined_variables: bool,
    #[arg(long = "jobserver-auth")]
    jobserver_auth: Option<String>,
    /// Build on this machine, like GNU make (the default until a farm is configured).
    #[arg(long = "local")]
    local: bool,
    /// The coordinator of a shared farm.
    #[arg(long = "coordinator", env = "RMAKE_COORDINATOR")]
    coordinator: Option<String>,
    /// The client token for the farm.
    #[arg(long = "token", env = "RMAKE_TOKEN")]
    token: Option<String>,
    /// Which outputs to download from the farm: all, goals or none.
    #[arg(long = "download")]
    download: Option<String>,
    /// Why targets of the last farm build missed the cache.
    #[arg(long = "explain", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    explain: Option<String>,
    /// Goals and VAR=value assignments.
    #[arg(last = true)]
    words: Vec<String>,
}

/// How `-j` was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jobs {
    /// No `-j`: one job at a time.
    #[default]
    One,
    /// `-j N`
    Limit(u32),
    /// `-j` without a number: no limit.
    Unlimited,
}

/// Which outputs a farm build downloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Download {
    /// Every output.
    #[default]
    All,
    /// Only the goals' files.
    Goals,
    /// Nothing.
    None,
}

/// The resolved configuration of one invocation (MAKEFLAGS from the environment, then argv).
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// -B
    pub always_make: bool,
    /// -C, in order (cumulative).
    pub directories: Vec<String>,
    /// -e
    pub env_overrides: bool,
    /// --eval
    pub evals: Vec<String>,
    /// -f, in order.
    pub makefiles: Vec<String>,
    /// -h
    pub help: bool,
    /// -i
    pub ignore_errors: bool,
    /// -I, in order.
    pub include_dirs: Vec<String>,
    /// -j
    pub jobs: Jobs,
    /// -k (cancelled by a later -S)
    pub keep_going: bool,
    /// -l
    pub load_average: Option<String>,
    /// -L
    pub check_symlink_times: bool,
    /// -n
    pub just_print: bool,
    /// -o
    pub old_files: Vec<String>,
    /// -O
    pub output_sync: Option<String>,
    /// -p
    pub print_data_base: bool,
    /// -q
    pub question: bool,
    /// -r
    pub no_builtin_rules: bool,
    /// -R
    pub no_builtin_variables: bool,
    /// -s
    pub silent: bool,
    /// -t
    pub touch: bool,
    /// --trace
    pub trace: bool,
    /// -v
    pub version: bool,
    /// -w
    pub print_directory: bool,
    /// --no-print-directory
    pub no_print_directory: bool,
    /// -W
    pub new_files: Vec<String>,
    /// --debug flags given (shown in MAKEFLAGS).
    pub debug: Vec<String>,
    /// --warn-undefined-variables
    pub warn_undefined: bool,
    /// Command-line variable assignments, in command-line order (MAKEFLAGS' first).
    pub vars: Vec<String>,
    /// Goals, in order.
    pub goals: Vec<String>,
    /// `--jobserver-auth=R,W` from the parent make's MAKEFLAGS.
    pub jobserver_auth: Option<String>,
    /// --local (or RMAKE_LOCAL=1 inherited by sub-makes).
    pub local: bool,
    /// --coordinator / RMAKE_COORDINATOR
    pub coordinator: Option<String>,
    /// --token / RMAKE_TOKEN
    pub token: Option<String>,
    /// --download
    pub download: Download,
    /// Whether `--download` was given (else the config files decide).
    pub download_set: bool,
    /// `--explain[=TARGET]`: explain the last build's cache misses (those of TARGET, or of the
    /// goals given, or all) instead of building.
    pub explain: Option<String>,
}

/// A command line that cannot be used, with make's wording.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// A bad option.
    #[error("{0}")]
    Arg(#[from] ArgError),
    /// Something clap refused (should not happen after normalisation).
    #[error("{0}")]
    Clap(String),
    /// `--download=x`
    #[error("invalid --download value '{0}' (expected all, goals or none)")]
    Download(String),
    /// A command line make refuses with `*** ….  Stop.` (no usage text).
    #[error("*** {0}.  Stop.")]
    Fatal(String),
}

/// The on/off flags a makefile may add by changing MAKEFLAGS (they take effect after reading).
const MAKEFILE_FLAGS: [fn(&mut Config) -> &mut bool; 9] = [
    |c| &mut c.keep_going,
    |c| &mut c.silent,
    |c| &mut c.ignore_errors,
    |c| &mut c.just_print,
    |c| &mut c.question,
    |c| &mut c.touch,
    |c| &mut c.always_make,
    |c| &mut c.trace,
    |c| &mut c.print_directory,
];

impl Config {
    /// Adds the flags of the MAKEFLAGS a makefile set (`MAKEFLAGS += -k -j2 -r`); `true` when
    /// that turned the built-in rules off.
    pub fn add_makefile_flags(&mut self, mut extra: Config) -> bool {
        for flag in MAKEFILE_FLAGS {
            let on = *flag(&mut extra);
            *flag(self) |= on;
        }
        if extra.jobs != Jobs::One {
            self.jobs = extra.jobs;
        }
        let drop_builtin = (extra.no_builtin_rules || extra.no_builtin_variables) && !self.no_builtin_rules;
        self.no_builtin_rules |= drop_builtin;
        drop_builtin
    }

    /// Resolves argv (without argv[0]) and the MAKEFLAGS value from the environment.
    pub fn from_args(args: &[String], env_makeflags: Option<&str>) -> Result<Config, UsageError> {
        Config::from_args_env(args, env_makeflags.into_iter())
    }

    /// Like `from_args`, with several environment values read in order (GNUMAKEFLAGS, then
    /// MAKEFLAGS). `-C` and `-f` in them are ignored, as make does.
    pub fn from_args_env<'a>(
        args: &[String],
        env_values: impl Iterator<Item = &'a str>,
    ) -> Result<Config, UsageError> {
        let mut cfg = Config::default();
        for mf in env_values {
            // make reads the variable through `$(MAKEFLAGS)`: one level of expansion, so the
            // `$$` it wrote for each `$` of a command-line value is one `$` again.
            let words = makeflags::split_env(&mf.replace("$$", "$"));
            // make ignores errors in MAKEFLAGS it cannot parse; we do the same by skipping.
            if let Ok(n) = argv::normalize(&words) {
                if let Ok(raw) = parse_raw(&n) {
                    cfg.apply(raw, &n.options)?;
                }
            }
        }
        cfg.directories.clear();
        cfg.makefiles.clear();
        let n = argv::normalize(args)?;
        let raw = parse_raw(&n)?;
        cfg.apply(raw, &n.options)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// make's fatal checks of option values and words.
    fn validate(&self) -> Result<(), UsageError> {
        if let Some(o) = &self.output_sync {
            if !matches!(o.as_str(), "none" | "line" | "target" | "recurse") {
                return Err(UsageError::Fatal(format!("unknown output-sync type '{o}'")));
            }
        }
        for d in &self.debug {
            for word in d.split([',', ' ']).filter(|w| !w.is_empty()) {
                if !word.starts_with(['a', 'b', 'v', 'i', 'j', 'm', 'n']) {
                    return Err(UsageError::Fatal(format!("unknown debug level specification '{word}'")));
                }
            }
        }
        if self.goals.iter().any(String::is_empty) {
            return Err(UsageError::Fatal("empty string invalid as file name".into()));
        }
        Ok(())
    }

    fn apply(&mut self, raw: RawArgs, order: &[String]) -> Result<(), UsageError> {
        // -k/-S and -s/--no-silent: the last one given wins.
        for o in order {
            match o.as_str() {
                "--keep-going" => self.keep_going = true,
                "--no-keep-going" => self.keep_going = false,
                "--silent" => self.silent = true,
                "--no-silent" => self.silent = false,
                _ => {}
            }
        }
        self.always_make |= raw.always_make;
        self.directories.extend(raw.directory);
        self.env_overrides |= raw.environment_overrides;
        self.evals.extend(raw.eval);
        self.makefiles.extend(raw.file);
        self.help |= raw.help;
        self.ignore_errors |= raw.ignore_errors;
        self.include_dirs.extend(raw.include_dir);
        if let Some(j) = raw.jobs.last() {
            self.jobs = match j.parse::<u32>() {
                Ok(0) | Err(_) => Jobs::Unlimited,
                Ok(n) => Jobs::Limit(n),
            };
        }
        if let Some(l) = raw.load_average.last() {
            self.load_average = (!l.is_empty()).then(|| l.clone());
        }
        self.check_symlink_times |= raw.check_symlink_times;
        self.just_print |= raw.just_print;
        self.old_files.extend(raw.old_file);
        if let Some(o) = raw.output_sync.last() {
            self.output_sync = Some(o.clone());
        }
        self.print_data_base |= raw.print_data_base;
        self.question |= raw.question;
        self.no_builtin_rules |= raw.no_builtin_rules;
        self.no_builtin_variables |= raw.no_builtin_variables;
        self.touch |= raw.touch;
        self.trace |= raw.trace;
        self.version |= raw.version;
        self.print_directory |= raw.print_directory;
        self.no_print_directory |= raw.no_print_directory;
        self.new_files.extend(raw.what_if);
        if raw.debug_all {
            self.debug.push("a".into());
        }
        self.debug.extend(raw.debug);
        self.warn_undefined |= raw.warn_undefined_variables;
        if raw.jobserver_auth.is_some() {
            self.jobserver_auth = raw.jobserver_auth;
        }
        self.local |= raw.local;
        if raw.explain.is_some() {
            self.explain = raw.explain;
        }
        if raw.coordinator.is_some() {
            self.coordinator = raw.coordinator;
        }
        if raw.token.is_some() {
            self.token = raw.token;
        }
        if let Some(d) = raw.download {
            self.download_set = true;
            self.download = match d.as_str() {
                "all" => Download::All,
                "goals" => Download::Goals,
                "none" => Download::None,
                _ => return Err(UsageError::Download(d)),
            };
        }
        for w in raw.words {
            if w.contains('=') && argv::assignment_name(&w).is_none() && !w.starts_with('-') {
                return Err(UsageError::Fatal("empty variable name".into()));
            }
            if argv::assignment_name(&w).is_some() {
                self.vars.push(w);
            } else {
                self.goals.push(w);
            }
        }
        Ok(())
    }
}

fn parse_raw(n: &argv::Normalized) -> Result<RawArgs, UsageError> {
    let mut tokens = vec!["rmake-remote".to_string()];
    tokens.extend(n.options.iter().cloned());
    if !n.words.is_empty() {
        tokens.push("--".into());
        tokens.extend(n.words.iter().cloned());
    }
    RawArgs::try_parse_from(tokens).map_err(|e| UsageError::Clap(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(args: &[&str], env: Option<&str>) -> Config {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        Config::from_args(&v, env).expect("valid")
    }

    #[test]
    fn goals_and_vars_anywhere() {
        let c = cfg(&["A=1", "all", "-k", "B:=2", "test"], None);
        assert_eq!(c.goals, ["all", "test"]);
        assert_eq!(c.vars, ["A=1", "B:=2"]);
        assert!(c.keep_going);
    }

    #[test]
    fn stop_cancels_keep_going() {
        assert!(!cfg(&["-k", "-S"], None).keep_going);
        assert!(!cfg(&["-S"], Some("k")).keep_going);
    }

    #[test]
    fn jobs_forms() {
        assert_eq!(cfg(&["-j"], None).jobs, Jobs::Unlimited);
        assert_eq!(cfg(&["-j4"], None).jobs, Jobs::Limit(4));
        assert_eq!(cfg(&["-kj", "2"], None).jobs, Jobs::Limit(2));
        assert_eq!(cfg(&[], None).jobs, Jobs::One);
    }

    #[test]
    fn makeflags_from_environment_first() {
        let c = cfg(&["B=2"], Some("ks -j3 -- A=1"));
        assert!(c.keep_going && c.silent);
        assert_eq!(c.jobs, Jobs::Limit(3));
        assert_eq!(c.vars, ["A=1", "B=2"]);
    }

    #[test]
    fn directories_accumulate() {
        assert_eq!(cfg(&["-C", "a", "-Cb"], None).directories, ["a", "b"]);
    }

    // make 4.3 writes `A=a$$b` as `A=a$$$$b` in MAKEFLAGS; a sub-make reads it back as `A=a$$b`.
    #[test]
    fn env_makeflags_dollars_read_back() {
        assert_eq!(cfg(&[], Some(" -- A=a$$$$b B=x\\ y")).vars, ["A=a$$b", "B=x y"]);
    }

    #[test]
    fn makefile_flags_add_to_the_command_line() {
        let mut c = cfg(&["-s"], None);
        assert!(c.add_makefile_flags(cfg(&["-k", "-j2", "-r"], None)));
        assert!(c.silent && c.keep_going && c.no_builtin_rules && !c.just_print);
        assert_eq!(c.jobs, Jobs::Limit(2));
        // Built-in rules already off: nothing more to drop; -j kept when the makefile has none.
        assert!(!c.add_makefile_flags(cfg(&["-R", "-n"], None)));
        assert!(c.just_print);
        assert_eq!(c.jobs, Jobs::Limit(2));
    }

    #[test]
    fn farm_options_accepted() {
        let c = cfg(&["--local", "--coordinator", "http://x", "--download=goals"], None);
        assert!(c.local);
        assert_eq!(c.coordinator.as_deref(), Some("http://x"));
        assert_eq!(c.download, Download::Goals);
    }
}
