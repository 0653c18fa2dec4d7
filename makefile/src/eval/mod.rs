//! Reading makefiles: loading (`Database::load`), the initial variables, and helpers shared by the
//! line evaluator (`reader`), assignments (`assign`), rules (`rules`) and conditionals (`cond`).

mod assign;
mod cond;
mod makeflags;
mod reader;
mod recipe_text;
mod rules;
mod specials;
mod suffix;

use crate::db::{Database, LoadOptions, LoadReport, MakefileRead, Scope};
use crate::error::Error;
use crate::host::Host;
use crate::vars::{Export, Flavor, Origin, Variable};
use std::sync::Arc;

/// Loader state that lives as long as the database: options the language needs later.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReadState {
    /// The process environment as given.
    pub env: Vec<(String, String)>,
    /// `-I` directories.
    pub include_dirs: Vec<String>,
    /// `-e`.
    pub env_overrides: bool,
    /// `-r`.
    pub no_builtin_rules: bool,
    /// `MAKELEVEL` of this make.
    pub makelevel: u32,
    /// Makefiles read or attempted.
    pub report: LoadReport,
    /// Names of variables set on the command line.
    pub cmdline: Vec<String>,
    /// `--warn-undefined-variables`.
    pub warn_undefined: bool,
    /// The `MAKEFLAGS` value given by the CLI, its flags part (shown while reading) and its
    /// ` -- VAR=value` part (added back after reading).
    pub makeflags_full: String,
    /// See `makeflags_full`.
    pub makeflags_parse: String,
    /// See `makeflags_full`.
    pub makeflags_overrides: String,
    /// Reading a makefile that must not set the default goal (those named by `MAKEFILES`).
    pub no_default_goal: bool,
    /// The `.SUFFIXES` list with repetitions, as make keeps it (suffix-rule conversion walks it).
    pub suffixes_raw: Vec<String>,
    /// Makefiles are being read (`Database::load`/`new`/`eval_text`), as opposed to recipes expanded.
    pub loading: bool,
    /// Makefiles read but not yet appended to `MAKEFILE_LIST`.
    pub makefile_list_pending: Vec<String>,
    /// Nesting of `include` (to stop runaway recursion).
    pub include_depth: u32,
    /// Whether any rule has set the default goal yet is decided by the variable; this records that the
    /// built-in suffix rules were entered (so user `.c.o` rules do not warn about overriding them).
    pub builtin_suffix_rules: Vec<usize>,
}

const FEATURES: &str = "target-specific order-only second-expansion else-if shortest-stem undefine oneshell nocomment grouped-target extra-prereqs archives jobserver output-sync check-symlink load";

/// Whether a name can be put in a process environment.
pub(crate) fn exportable(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

impl Database {
    pub(crate) fn set_global(&mut self, name: &str, value: &str, flavor: Flavor, origin: Origin) {
        self.globals
            .insert(name.to_string(), Variable::new(value, flavor, origin));
    }
}

/// The database before any makefile: built-in and automatic variables, the environment, command-line
/// variables, built-in rules.
pub(crate) fn initial(host: &mut dyn Host, opts: &LoadOptions) -> Result<Database, Error> {
    let mut db = Database::default();
    db.state.loading = true;
    db.state.env = opts.env.clone();
    db.state.include_dirs = opts.include_dirs.clone();
    db.state.env_overrides = opts.env_overrides;
    db.state.no_builtin_rules = opts.no_builtin_rules || opts.no_builtin_vars;
    db.state.makelevel = opts.makelevel;
    db.state.warn_undefined = opts
        .makeflags
        .split(' ')
        .any(|w| w == "--warn-undefined-variables");

    // The environment (SHELL is never taken from it, as make does).
    for (k, v) in &opts.env {
        if k.is_empty() || k == "MAKELEVEL" || k == "MAKEFLAGS" || k == "MFLAGS" {
            continue;
        }
        // With -e the origin becomes "environment override" only when a makefile assigns the variable.
        let origin = Origin::Environment;
        let mut var = Variable::new(v.as_str(), Flavor::Recursive, origin);
        // make marks imported variables exported, so a makefile assignment keeps them in the environment.
        var.export = Export::Yes;
        if k == "SHELL" {
            var.export = Export::No;
            var.origin = Origin::File;
            var.value = Arc::from("/bin/sh");
        }
        db.globals.insert(k.clone(), var);
    }

    let program = if opts.make_program.is_empty() {
        "make"
    } else {
        opts.make_program.as_str()
    };
    let simple_default = [
        ("MAKE_VERSION", "4.3"),
        ("MAKE_HOST", "x86_64-pc-linux-gnu"),
        ("MAKE_COMMAND", program),
        (".FEATURES", FEATURES),
        (
            ".INCLUDE_DIRS",
            "/usr/local/include /usr/include /usr/include",
        ),
        (".SHELLFLAGS", "-c"),
        (".LOADED", ""),
        ("MAKEFILES", ""),
    ];
    for (k, v) in simple_default {
        if !db.globals.contains_key(k) || k == "MAKE_VERSION" || k == "MAKE_COMMAND" {
            db.set_global(k, v, Flavor::Simple, Origin::Default);
        }
    }
    db.set_global(
        "MAKE",
        "$(MAKE_COMMAND)",
        Flavor::Recursive,
        Origin::Default,
    );
    db.set_global("GNUMAKEFLAGS", "", Flavor::Simple, Origin::Environment);
    if let Some(v) = db.globals.get_mut(".INCLUDE_DIRS") {
        v.flavor = Flavor::Recursive;
    }
    if !db.globals.contains_key("SHELL") {
        db.set_global("SHELL", "/bin/sh", Flavor::Simple, Origin::Default);
    }
    db.set_global("CURDIR", &host.cwd(), Flavor::Simple, Origin::File);
    db.set_global(
        "MAKELEVEL",
        &opts.makelevel.to_string(),
        Flavor::Simple,
        Origin::Environment,
    );
    db.set_global(".RECIPEPREFIX", "", Flavor::Simple, Origin::Default);
    // Its value is computed on each reference (the names of all global variables).
    db.set_global(".VARIABLES", "", Flavor::Simple, Origin::Default);
    db.set_global(".DEFAULT_GOAL", "", Flavor::Simple, Origin::File);
    db.set_global("MAKEFILE_LIST", "", Flavor::Simple, Origin::File);
    if opts.restarts > 0 {
        db.set_global(
            "MAKE_RESTARTS",
            &opts.restarts.to_string(),
            Flavor::Simple,
            Origin::Environment,
        );
    }
    // While reading, make's MAKEFLAGS holds only the flags; the ` -- VAR=value` part is added after.
    let (flags_part, overrides_part) = split_makeflags(&opts.makeflags);
    db.state.makeflags_full = opts.makeflags.clone();
    db.state.makeflags_overrides = overrides_part.to_string();
    db.state.makeflags_parse = flags_part.to_string();
    let mut mf = Variable::new(flags_part, Flavor::Recursive, Origin::File);
    mf.export = Export::Yes;
    db.globals.insert("MAKEFLAGS".into(), mf);
    let mflags = if opts.makeflags.is_empty()
        || opts.makeflags.starts_with(' ')
        || opts.makeflags.starts_with('-')
    {
        opts.makeflags
            .split(" -- ")
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    } else {
        format!(
            "-{}",
            opts.makeflags.split(" -- ").next().unwrap_or("").trim()
        )
    };
    db.set_global("MFLAGS", &mflags, Flavor::Recursive, Origin::Environment);
    if !opts.goals.is_empty() {
        db.set_global(
            "MAKECMDGOALS",
            &opts.goals.join(" "),
            Flavor::Simple,
            Origin::Default,
        );
    }
    // make 4.3 has no D/F forms of `$|`.
    for name in ["@", "%", "<", "?", "^", "+", "*"] {
        let mut d = Variable::new(
            format!("$(patsubst %/,%,$(dir ${name}))"),
            Flavor::Recursive,
            Origin::Automatic,
        );
        d.loc = None;
        db.globals.insert(format!("{name}D"), d);
        db.globals.insert(
            format!("{name}F"),
            Variable::new(
                format!("$(notdir ${name})"),
                Flavor::Recursive,
                Origin::Automatic,
            ),
        );
    }

    if !opts.no_builtin_vars {
        crate::builtin::define_variables(&mut db);
    }
    if !db.state.no_builtin_rules {
        crate::builtin::define_suffix_rules(&mut db);
    } else {
        db.special.suffixes.clear();
        db.state.suffixes_raw.clear();
        if db
            .globals
            .get("SUFFIXES")
            .is_none_or(|v| v.origin <= Origin::Default)
        {
            db.set_global("SUFFIXES", "", Flavor::Simple, Origin::Default);
        }
    }

    // Command-line variables last: they beat everything the makefile does without `override`.
    for assignment in &opts.cmdline_vars {
        db.define_cmdline(host, assignment)?;
    }
    Ok(db)
}

/// Read the makefiles of `opts` into a database.
pub(crate) fn load(
    host: &mut dyn Host,
    opts: &LoadOptions,
) -> Result<(Database, LoadReport), Error> {
    let mut db = initial(host, opts)?;
    for e in &opts.eval {
        // make reads --eval text with no file name: its errors carry no location.
        db.eval_source(host, Arc::from(""), e, 1, true)?;
    }
    // MAKEFILES: read first, silently, without setting the default goal.
    let makefiles_var = db.expand(host, "$(MAKEFILES)", &Scope::GLOBAL)?;
    for m in crate::pattern::words(&makefiles_var)
        .map(str::to_string)
        .collect::<Vec<_>>()
    {
        db.read_makefile(host, &m, None, true, false)?;
    }
    if opts.makefiles.is_empty() {
        let found = ["GNUmakefile", "makefile", "Makefile"]
            .into_iter()
            .find(|n| host.mtime(n).is_some());
        if let Some(name) = found {
            db.read_makefile(host, name, None, false, true)?;
        }
    } else {
        for m in &opts.makefiles {
            db.read_makefile(host, m, None, false, true)?;
        }
    }
    db.sync_makefile_list();
    db.apply_makefile_makeflags(host)?;
    db.finish_load(host);
    db.state.loading = false;
    let report = db.state.report.clone();
    Ok((db, report))
}

impl Database {
    /// Read one makefile (`-f`, default, or `include`d); records it in the report.
    pub(crate) fn read_makefile(
        &mut self,
        host: &mut dyn Host,
        name: &str,
        loc: Option<&crate::loc::Loc>,
        optional: bool,
        set_default: bool,
    ) -> Result<(), Error> {
        // make records `./x` as `x` (in MAKEFILE_LIST too).
        let mut path = rules::strip_dot_slash(name).to_string();
        let mut text = host.read_file(&path);
        if text.is_err() && loc.is_some() && !name.starts_with('/') {
            let mut dirs = self.state.include_dirs.clone();
            dirs.extend(["/usr/local/include".to_string(), "/usr/include".to_string()]);
            for d in dirs {
                let cand = rules::strip_dot_slash(&format!("{}/{}", d.trim_end_matches('/'), name))
                    .to_string();
                if let Ok(t) = host.read_file(&cand) {
                    path = cand;
                    text = Ok(t);
                    break;
                }
            }
        }
        let text = match text {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || host.mtime(&path).is_none() => {
                self.state.report.makefiles.push(MakefileRead {
                    name: name.to_string(),
                    loc: loc.cloned(),
                    optional,
                    missing: true,
                });
                return Ok(());
            }
            Err(e) => {
                return Err(Error::new(
                    None,
                    crate::error::ErrorKind::Read {
                        path: name.to_string(),
                        reason: crate::eval::io_reason(&e),
                    },
                ))
            }
        };
        self.state.report.makefiles.push(MakefileRead {
            name: path.clone(),
            loc: loc.cloned(),
            optional,
            missing: false,
        });
        // MAKEFILE_LIST += name, applied when the variable is next read (see `sync_makefile_list`), so
        // reading thousands of included files does not copy the growing list each time.
        self.state.makefile_list_pending.push(path.clone());
        if self.state.include_depth > 200 {
            return Err(Error::new(
                loc.cloned(),
                crate::error::ErrorKind::Other(format!("{name}: too many nested includes")),
            ));
        }
        self.state.include_depth += 1;
        let saved = std::mem::replace(&mut self.state.no_default_goal, !set_default);
        // make reads CR-LF line ends as LF.
        let text = if text.contains("\r\n") {
            text.replace("\r\n", "\n")
        } else {
            text
        };
        let r = self.eval_source(host, Arc::from(path.as_str()), &text, 1, false);
        self.state.no_default_goal = saved;
        self.state.include_depth -= 1;
        r
    }
}

/// Split a MAKEFLAGS value into its flags and its ` -- VAR=value...` part (`("k", " -- X=1")`).
fn split_makeflags(mf: &str) -> (&str, &str) {
    if mf.starts_with("-- ") || mf == "--" {
        return ("", mf);
    }
    match mf
        .find(" -- ")
        .or_else(|| mf.strip_suffix(" --").map(|s| s.len()))
    {
        Some(i) => (mf[..i].trim_end(), &mf[i..]),
        None => (mf, ""),
    }
}

impl Database {
    /// Append the makefiles read since the last call to `MAKEFILE_LIST` (as `+=` would).
    pub(crate) fn sync_makefile_list(&mut self) {
        if self.state.makefile_list_pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.state.makefile_list_pending);
        let entry = self
            .globals
            .entry("MAKEFILE_LIST".into())
            .or_insert_with(|| Variable::new("", Flavor::Simple, Origin::File));
        let mut v = String::with_capacity(
            entry.value.len() + pending.iter().map(|p| p.len() + 1).sum::<usize>(),
        );
        v.push_str(&entry.value);
        for p in pending {
            if !v.is_empty() {
                v.push(' ');
            }
            v.push_str(&p);
        }
        entry.value = Arc::from(v.as_str());
    }
}

/// The message make prints for an I/O error (`No such file or directory`).
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "Permission denied".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

/// Split expanded prerequisite text into (normal, order-only) names (`|` separates them).
pub(crate) fn split_prereqs(text: &str) -> (Vec<String>, Vec<String>) {
    let mut normal = Vec::new();
    let mut order = Vec::new();
    let mut in_order = false;
    for w in crate::lexer::split_file_words(text) {
        if w == "|" {
            in_order = true;
            continue;
        }
        let w = rules::strip_dot_slash(&w);
        if in_order {
            order.push(w.to_string());
        } else {
            normal.push(w.to_string());
        }
    }
    (normal, order)
}

/// Split a `VPATH`/`vpath` directory list (colon- or blank-separated), dropping trailing slashes.
pub(crate) fn split_path_list(text: &str) -> Vec<String> {
    text.split(|c: char| c == ':' || c.is_ascii_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| {
            let t = s.trim_end_matches('/');
            if t.is_empty() {
                "/".to_string()
            } else {
                t.to_string()
            }
        })
        .collect()
}

/// The environment of a recipe run in `scope` (make's `target_environment`): every variable of the
/// target's chain (private ones included, as make 4.3 does), first definition winning, exported per its
/// export flag (a target-specific variable without one takes the global variable's), origin and
/// `.EXPORT_ALL_VARIABLES`.
pub(crate) fn recipe_env(
    db: &mut Database,
    host: &mut dyn Host,
    scope: &Scope<'_>,
) -> Result<Vec<(String, String)>, Error> {
    let mut names: Vec<String> = Vec::new();
    let mut seen = crate::vars::FxHashSet::default();
    for t in scope.targets.iter() {
        if let Some(set) = db.target_vars.get(*t) {
            let mut ks: Vec<&String> = set.keys().collect();
            ks.sort();
            for k in ks {
                if seen.insert(k.clone()) {
                    names.push(k.clone());
                }
            }
        }
        for p in &db.pattern_vars {
            if p.applies_to(t) && seen.insert(p.name.clone()) {
                names.push(p.name.clone());
            }
        }
    }
    let mut globals: Vec<&String> = db.globals.keys().filter(|k| !seen.contains(*k)).collect();
    globals.sort();
    names.extend(globals.into_iter().cloned());
    let export_all = db.special.export_all;
    let mut env = Vec::new();
    for name in names {
        if name == "MAKELEVEL" || name == "MAKEFLAGS" {
            continue;
        }
        // The first definition in the chain, private or not.
        let mut found: Option<(Variable, bool)> = None;
        for t in scope.targets.iter() {
            if let Some(v) = db.target_vars.get(*t).and_then(|s| s.get(&name)) {
                found = Some((v.clone(), true));
                break;
            }
            if let Some(v) = db.pattern_var_for(&name, t) {
                found = Some((v, true));
                break;
            }
        }
        if found.is_none() {
            found = db.globals.get(&name).map(|v| (v.clone(), false));
        }
        let Some((mut v, per_target)) = found else {
            continue;
        };
        if per_target && v.export == Export::Default {
            if let Some(g) = db.globals.get(&name) {
                v.export = g.export;
            }
        }
        let export = match v.export {
            Export::Yes => true,
            Export::No => {
                if name == "SHELL" {
                    if let Some((_, s)) = db.state.env.iter().find(|(k, _)| k == "SHELL") {
                        env.push(("SHELL".to_string(), s.clone()));
                    }
                }
                false
            }
            Export::Default => {
                !matches!(v.origin, Origin::Default | Origin::Automatic)
                    && exportable(&name)
                    && (export_all
                        || matches!(
                            v.origin,
                            Origin::CommandLine | Origin::Environment | Origin::EnvironmentOverride
                        ))
            }
        };
        if !export || !exportable(&name) {
            continue;
        }
        let visible = db
            .lookup(&name, scope)
            .is_some_and(|l| l.value == v.value && l.origin == v.origin);
        // A value that came from the environment goes back into it unexpanded, as make does.
        let from_env =
            matches!(v.origin, Origin::Environment | Origin::EnvironmentOverride) && !v.append;
        // Expanded here, outside any makefile line: make reports (e.g. undefined-variable warnings) at
        // the variable's own definition.
        let at = v.loc.clone();
        let value = if from_env {
            v.value.to_string()
        } else if visible {
            match v.flavor {
                Flavor::Simple if !v.append => v.value.to_string(),
                _ => db.expand_at(host, &format!("$({name})"), scope, at.as_ref())?,
            }
        } else {
            match v.flavor {
                Flavor::Simple => v.value.to_string(),
                Flavor::Recursive => db.expand_at(host, &v.value, scope, at.as_ref())?,
            }
        };
        env.push((name, value));
    }
    // `unexport MAKEFLAGS` keeps it out of the recipe's environment (MFLAGS still goes).
    let mf_unexported = db
        .globals
        .get("MAKEFLAGS")
        .is_some_and(|v| v.export == Export::No);
    let mf = if mf_unexported {
        String::new()
    } else {
        db.expand(host, "$(MAKEFLAGS)", scope)?
    };
    if !mf.is_empty() {
        env.push(("MAKEFLAGS".into(), mf));
    }
    env.push(("MAKELEVEL".into(), (db.state.makelevel + 1).to_string()));
    Ok(env)
}
