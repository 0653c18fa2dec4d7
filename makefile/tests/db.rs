//! Unit tests of the database through the public API, written as tables: rules with their exact
//! locations, expansions in target scopes (values checked against GNU make 4.3), and fatal errors with
//! their exact locations and wording.

use rmake_makefile::{AutoVars, Database, LoadOptions, MemHost, Scope};

fn load_with(text: &str, cmdline: &[&str]) -> (Database, MemHost) {
    let mut h = MemHost::new().with_file("Makefile", text);
    let opts = LoadOptions {
        cmdline_vars: cmdline.iter().map(|s| s.to_string()).collect(),
        ..LoadOptions::default()
    };
    let (db, _) = Database::load(&mut h, &opts).unwrap_or_else(|e| panic!("load failed: {e}"));
    (db, h)
}

fn load(text: &str) -> (Database, MemHost) {
    load_with(text, &[])
}

/// `rule! { name, "makefile", "target", loc: "Makefile:N", prereqs: [...], order_only: [...],
/// recipe: [("Makefile:N", "text"), ...] }` checks the first rule of `target`.
macro_rules! rule {
    ($name:ident, $text:expr, $target:expr, loc: $loc:expr, prereqs: [$($p:expr),*], order_only: [$($o:expr),*],
     recipe: [$(($rl:expr, $rt:expr)),*]) => {
        #[test]
        fn $name() {
            let (db, _) = load($text);
            let idx = *db.rules_for($target).first().unwrap_or_else(|| panic!("no rule for {}", $target));
            let r = &db.rules[idx];
            assert_eq!(r.loc.to_string(), $loc, "rule location");
            let p: Vec<&str> = vec![$($p),*];
            assert_eq!(r.prereqs, p, "prerequisites");
            let o: Vec<&str> = vec![$($o),*];
            assert_eq!(r.order_only, o, "order-only prerequisites");
            let want: Vec<(&str, &str)> = vec![$(($rl, $rt)),*];
            let got: Vec<(String, String)> = r
                .recipe
                .as_ref()
                .map(|rc| rc.lines.iter().map(|l| (l.loc.to_string(), l.text.clone())).collect())
                .unwrap_or_default();
            let got: Vec<(&str, &str)> = got.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            assert_eq!(got, want, "recipe lines");
        }
    };
}

/// `expand! { name, "makefile", [scope targets], "text" => "expected" }`.
macro_rules! expand {
    ($name:ident, $text:expr, [$($t:expr),*], $what:expr => $want:expr) => {
        expand!($name, $text, [], [$($t),*], $what => $want);
    };
    ($name:ident, $text:expr, [$($cmd:expr),*], [$($t:expr),*], $what:expr => $want:expr) => {
        #[test]
        fn $name() {
            let (mut db, mut h) = load_with($text, &[$($cmd),*]);
            let targets: Vec<&str> = vec![$($t),*];
            let scope = Scope { targets: &targets, auto: None };
            let got = db.expand(&mut h, $what, &scope).unwrap_or_else(|e| panic!("expand failed: {e}"));
            assert_eq!(got, $want);
        }
    };
}

/// `error! { name, "makefile", "Makefile:N: *** message.  Stop." }`.
macro_rules! error {
    ($name:ident, $text:expr, $want:expr) => {
        #[test]
        fn $name() {
            let mut h = MemHost::new().with_file("Makefile", $text);
            match Database::load(&mut h, &LoadOptions::default()) {
                Ok(_) => panic!("expected an error"),
                Err(e) => assert_eq!(e.to_string(), $want),
            }
        }
    };
}

rule! { simple_rule, "all: a b | c\n\techo $@\n\t@echo two\n", "all", loc: "Makefile:1",
prereqs: ["a", "b"], order_only: ["c"], recipe: [("Makefile:2", "echo $@"), ("Makefile:3", "@echo two")] }
rule! { semicolon_recipe, "\n\nx: y ; echo semi # not a comment\n\techo next\n", "x", loc: "Makefile:3",
prereqs: ["y"], order_only: [], recipe: [("Makefile:3", " echo semi # not a comment"), ("Makefile:4", "echo next")] }
rule! { recipe_continuation, "t:\n\techo a \\\n\tb \\\n  c\n\techo d\n", "t", loc: "Makefile:1",
prereqs: [], order_only: [], recipe: [("Makefile:2", "echo a \\\nb \\\n  c"), ("Makefile:3", "echo d")] }
rule! { recipe_survives_comments_and_blank_lines, "t:\n\tone\n\n# comment\n\ttwo\n", "t", loc: "Makefile:1",
prereqs: [], order_only: [], recipe: [("Makefile:2", "one"), ("Makefile:3", "two")] }
rule! { recipe_across_conditionals, "t:\n\tone\nifeq (a,b)\n\tnot\nelse\n\tthree\nendif\n", "t", loc: "Makefile:1",
prereqs: [], order_only: [], recipe: [("Makefile:2", "one"), ("Makefile:3", "three")] }
rule! { recipe_prefix_variable, ".RECIPEPREFIX := >\nt:\n>echo hi\n", "t", loc: "Makefile:2",
prereqs: [], order_only: [], recipe: [("Makefile:3", "echo hi")] }
rule! { expanded_targets_and_prereqs, "O = a.o b.o\nprog: $(O) ./c.o\n", "prog", loc: "Makefile:2",
prereqs: ["a.o", "b.o", "c.o"], order_only: [], recipe: [] }
rule! { static_pattern, "objs = x.o y.o\n$(objs): %.o: %.c dep.h | dir\n\tcc $<\n", "y.o", loc: "Makefile:2",
prereqs: ["y.c", "dep.h"], order_only: ["dir"], recipe: [("Makefile:3", "cc $<")] }
rule! { multi_line_rule, "a \\\n  b: \\\n  c\n\tr\n", "b", loc: "Makefile:1",
prereqs: ["c"], order_only: [], recipe: [("Makefile:4", "r")] }
rule! { rule_in_eval, "define R\nz: w\n\tzz\n\tyy\nendef\n$(eval $(R))\n", "z", loc: "Makefile:6",
prereqs: ["w"], order_only: [], recipe: [("Makefile:6", "zz"), ("Makefile:7", "yy")] }

expand! { target_append_inherits, "CFLAGS = -O2\nall: CFLAGS += -g\n", ["child", "all"], "$(CFLAGS)" => "-O2 -g" }
expand! { private_not_inherited, "all: private P = p\n", ["child", "all"], "[$(P)]" => "[]" }
expand! { private_visible_to_owner, "all: private P = p\n", ["all"], "[$(P)]" => "[p]" }
expand! { target_conditional, "all: X ?= xq\n", ["all"], "$(X)" => "xq" }
expand! { target_simple_sees_own_appends, "CFLAGS = -O2\nall: CFLAGS += -g\nall: S := $(CFLAGS) simple\n",
["all"], "$(S)" => "-O2 -g simple" }
expand! { pattern_then_target_append, "CFLAGS = -O2\nall: CFLAGS += -g\n%.x: CFLAGS += pat\na.x: CFLAGS += exact\n",
["a.x", "all"], "$(CFLAGS)" => "-O2 -g pat exact" }
expand! { pattern_var_for_matching_only, "%.x: PV = pat\n", ["b.y"], "[$(PV)]" => "[]" }
expand! { pattern_var_needs_nonempty_stem, "%t: P = pat\nt%: Q = q\n%: R = r\n", ["t"],
"[$(P)][$(Q)][$(R)]" => "[][][r]" }
expand! { subst_ref_escaped_percent, "X = a% b% c\n", [], "$(X:\\%=<>)" => "a<> b<> c" }
expand! { subst_ref_literal_replacement, "X = a.c\n", [], "$(X:.c=\\%)" => "a\\%" }
expand! { foreach_binds_first_word, "", [], "$(foreach a b,1 2,[$(a)][$(a b)])" => "[1][] [2][]" }
expand! { longer_pattern_wins, "%.o: V = short\ndir/%.o: V = long\n", ["dir/a.o"], "$(V)" => "long" }
expand! { cmdline_beats_target_var, "CFLAGS = -O2\nall: CFLAGS += -g\n", ["CFLAGS=cmd"], ["all"], "$(CFLAGS)" => "cmd" }
expand! { cmdline_pattern_append_quirk, "all: CFLAGS += -g\n%.x: CFLAGS += pat\n", ["CFLAGS=cmd"], ["b.x", "all"],
"$(CFLAGS)" => "cmd cmd" }
expand! { override_beats_cmdline, "override CFLAGS += -g\n", ["CFLAGS=cmd"], [], "$(CFLAGS)" => "cmd -g" }
expand! { builtin_compile, "", [], "$(COMPILE.c)" => "cc    -c" }
expand! { auto_d_f_forms_without_auto, "", [], "[$(@D)][$(<F)]" => "[][]" }

#[test]
fn automatic_variables() {
    let (mut db, mut h) = load("");
    let auto = AutoVars {
        target: "dir/t.o".into(),
        first_prereq: "src/t.c".into(),
        all: vec!["src/t.c".into(), "h.h".into()],
        all_dups: vec!["src/t.c".into(), "h.h".into(), "h.h".into()],
        newer: vec!["h.h".into()],
        order_only: vec!["dir".into()],
        stem: "t".into(),
        ..AutoVars::default()
    };
    let scope = Scope {
        targets: &["dir/t.o"],
        auto: Some(&auto),
    };
    let got = db
        .expand(
            &mut h,
            "$@ $< $^ $+ $? $| $* $(@D) $(@F) $(<D) $(^F) $(*F)",
            &scope,
        )
        .expect("expand");
    assert_eq!(
        got,
        "dir/t.o src/t.c src/t.c h.h src/t.c h.h h.h h.h dir t dir t.o src t.c h.h t"
    );
}

#[test]
fn second_expansion_prereqs() {
    let (mut db, mut h) =
        load(".SECONDEXPANSION:\nV = late\nx.o: $$(V) $$@.in $$*.c | $$(V)-dir\nV = later\n");
    let r = db.rules[db.rules_for("x.o")[0]].clone();
    assert!(r.second_expansion);
    assert_eq!(r.prereq_text, "$(V) $@.in $*.c | $(V)-dir");
    let auto = AutoVars {
        target: "x.o".into(),
        stem: "x".into(),
        ..AutoVars::default()
    };
    let scope = Scope {
        targets: &["x.o"],
        auto: Some(&auto),
    };
    let (n, o) = db
        .expand_prereqs(&mut h, &r.prereq_text, None, &scope, Some(&r.loc))
        .expect("expand");
    assert_eq!(n, vec!["later", "x.o.in", "x.c"]);
    assert_eq!(o, vec!["later-dir"]);
}

#[test]
fn suffix_rules_become_pattern_rules() {
    let (db, _) = load(".SUFFIXES:\n.SUFFIXES: .in .out\n.in.out:\n\tconv $< $@\n");
    let p = db
        .pattern_rules
        .iter()
        .find(|p| p.targets == ["%.out"] && p.prereqs == ["%.in"])
        .expect("converted");
    assert!(p.from_suffix && !p.builtin);
    assert_eq!(
        p.recipe.as_ref().expect("recipe").lines[0].text,
        "conv $< $@"
    );
    assert!(
        !db.pattern_rules
            .iter()
            .any(|p| p.targets == ["%.o"] && p.prereqs == ["%.c"]),
        "built-in .c.o not converted"
    );
}

#[test]
fn builtin_rules_present_unless_r() {
    let (db, _) = load("");
    assert!(db
        .pattern_rules
        .iter()
        .any(|p| p.targets == ["%.o"] && p.prereqs == ["%.c"] && p.builtin));
    let mut h = MemHost::new().with_file("Makefile", "");
    let (db, _) = Database::load(
        &mut h,
        &LoadOptions {
            no_builtin_rules: true,
            ..LoadOptions::default()
        },
    )
    .expect("load");
    assert!(db.pattern_rules.is_empty());
    assert!(db.special.suffixes.is_empty());
}

#[test]
fn pattern_rules_replace_and_cancel() {
    let (db, _) = load("%.o: %.c\n\tfirst\n%.o: %.c\n\tsecond\n%.o: %.s\n");
    let user: Vec<_> = db
        .pattern_rules
        .iter()
        .filter(|p| !p.builtin && !p.from_suffix)
        .collect();
    assert_eq!(user.len(), 2);
    assert_eq!(
        user[0].recipe.as_ref().expect("recipe").lines[0].text,
        "second"
    );
    assert_eq!(user[0].loc.to_string(), "Makefile:3");
    assert!(
        user[1].recipe.is_none(),
        "a rule without recipe is kept (it cancels)"
    );
}

#[test]
fn special_targets() {
    let (db, _) = load(".PHONY: a b\n.PRECIOUS: %.o\n.SECONDARY:\n.DELETE_ON_ERROR:\n.ONESHELL:\n.NOTPARALLEL:\n.SILENT: q\n.DEFAULT:\n\techo default\n");
    assert!(db.is_phony("a") && db.is_phony("b") && !db.is_phony("c"));
    assert!(db.special.precious.contains("%.o"));
    assert!(
        db.special.secondary_all
            && db.special.delete_on_error
            && db.special.oneshell
            && db.special.notparallel
    );
    assert!(db.special.silent.contains("q") && !db.special.silent_all);
    let d = db.special.default_rule.expect(".DEFAULT");
    assert_eq!(
        db.rules[d].recipe.as_ref().expect("recipe").lines[0].text,
        "echo default"
    );
}

#[test]
fn vpath_directives() {
    let (mut db, mut h) = load("vpath %.c src:lib/\nvpath %.h inc\nVPATH = v1 v2\nvpath %.h\n");
    assert_eq!(
        db.vpath_dirs(&mut h, "a.c").expect("vpath"),
        vec!["src", "lib", "v1", "v2"]
    );
    assert_eq!(
        db.vpath_dirs(&mut h, "a.h").expect("vpath"),
        vec!["v1", "v2"]
    );
}

#[test]
fn recipe_environment() {
    let mut h = MemHost::new().with_file(
        "Makefile",
        "export A = $(B)\nB = b\nC = c\nunexport ENVX\nt: export T = tv\n",
    );
    let opts = LoadOptions {
        env: vec![("ENVX".into(), "x".into()), ("ENVY".into(), "y".into())],
        cmdline_vars: vec!["CMD=1".into()],
        ..LoadOptions::default()
    };
    let (mut db, _) = Database::load(&mut h, &opts).expect("load");
    let env = db
        .recipe_env(
            &mut h,
            &Scope {
                targets: &["t"],
                auto: None,
            },
        )
        .expect("env");
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("A").as_deref(), Some("b"));
    assert_eq!(get("C"), None);
    assert_eq!(get("ENVX"), None);
    assert_eq!(get("ENVY").as_deref(), Some("y"));
    assert_eq!(get("CMD").as_deref(), Some("1"));
    assert_eq!(get("T").as_deref(), Some("tv"));
    assert_eq!(get("MAKELEVEL").as_deref(), Some("1"));
}

#[test]
fn missing_includes_are_reported_not_errors() {
    let mut h = MemHost::new().with_file("Makefile", "include a.mk\n-include b.mk\nall: ; @:\n");
    let (_, report) = Database::load(&mut h, &LoadOptions::default()).expect("load");
    let got: Vec<(String, bool, bool, Option<String>)> = report
        .makefiles
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                m.optional,
                m.missing,
                m.loc.as_ref().map(|l| l.to_string()),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("Makefile".to_string(), false, false, None),
            (
                "a.mk".to_string(),
                false,
                true,
                Some("Makefile:1".to_string())
            ),
            (
                "b.mk".to_string(),
                true,
                true,
                Some("Makefile:2".to_string())
            ),
        ]
    );
}

#[test]
fn overriding_recipe_warns() {
    let (_, h) = load("x:\n\tone\n\nx:\n\ttwo\n");
    assert_eq!(
        h.err,
        "Makefile:5: warning: overriding recipe for target 'x'\nMakefile:2: warning: ignoring old recipe for target 'x'\n"
    );
}

error! { err_missing_separator, "a = 1\n\nfoo\n", "Makefile:3: *** missing separator.  Stop." }
error! { err_eight_spaces, "all:\n        echo\n", "Makefile:2: *** missing separator (did you mean TAB instead of 8 spaces?).  Stop." }
error! { err_recipe_first, "\techo\n", "Makefile:1: *** recipe commences before first target.  Stop." }
error! { err_missing_endif, "ifdef X\nA = 1\n", "Makefile:3: *** missing 'endif'.  Stop." }
error! { err_extraneous_endif, "A = 1\nendif\n", "Makefile:2: *** extraneous 'endif'.  Stop." }
error! { err_unterminated_ref, "A = 1\nB := $(A\n", "Makefile:2: *** unterminated variable reference.  Stop." }
error! { err_user_error, "\n$(error no $(words a b))\n", "Makefile:2: *** no 2.  Stop." }
error! { err_missing_endef, "x = 1\ndefine X\nabc\n", "Makefile:2: *** missing 'endef', unterminated 'define'.  Stop." }
error! { err_both_colons, "a: b\na:: c\n", "Makefile:2: *** target file 'a' has both : and :: entries.  Stop." }
error! { err_insufficient_args, "X := $(subst a,b)\n", "Makefile:1: *** insufficient number of arguments (2) to function 'subst'.  Stop." }
error! { err_target_pattern, "a: b: c\n", "Makefile:1: *** target pattern contains no '%'.  Stop." }
error! { err_recursive_var, "A = $(B)\nB = $(A)\n\nX := $(A)\n", "Makefile:1: *** Recursive variable 'A' references itself (eventually).  Stop." }

#[test]
fn pattern_prereqs_replace_first_percent_per_word() {
    let (mut db, mut h) = load(".SECONDEXPANSION:\n%.o: $$(addsuffix .c,%) $$(subst %,q,%) x%y\n");
    let text = db
        .pattern_rules
        .iter()
        .find(|p| p.targets == ["%.o"] && !p.builtin)
        .expect("rule")
        .prereq_text
        .clone();
    let auto = AutoVars {
        target: "a.o".into(),
        stem: "a".into(),
        ..AutoVars::default()
    };
    let scope = Scope {
        targets: &["a.o"],
        auto: Some(&auto),
    };
    let (n, _) = db
        .expand_pattern_prereqs(&mut h, &text, "a", &scope, None)
        .expect("expand");
    assert_eq!(n, vec!["a.c", "%", "xay"]);
}

#[test]
fn static_pattern_prereqs_replace_every_percent() {
    let (mut db, mut h) = load(".SECONDEXPANSION:\na.o: %.o: $$(subst %,q,%)\n");
    let r = db.rules[db.rules_for("a.o")[0]].clone();
    let (n, _) = db
        .expand_prereqs(
            &mut h,
            &r.prereq_text,
            r.stem.as_deref(),
            &Scope::GLOBAL,
            None,
        )
        .expect("expand");
    assert_eq!(n, vec!["q"]);
}

#[test]
fn define_and_command_line_after_load() {
    let (mut db, mut h) = load("X = file\noverride O = o\n");
    assert!(!db.define(
        "O",
        "new",
        rmake_makefile::Flavor::Simple,
        rmake_makefile::Origin::File
    ));
    db.define_command_line(&mut h, "X=cmd").expect("define");
    assert_eq!(
        db.expand(&mut h, "$(X) $(origin X)", &Scope::GLOBAL)
            .expect("expand"),
        "cmd command line"
    );
}

#[test]
fn second_expansion_scope_of_explicit_and_pattern_rules() {
    // make 4.3: an explicit rule's prerequisites see the target's own variables only; a pattern
    // rule's (expanded during implicit search) also see those of the targets that needed it.
    let (mut db, mut h) = load(".SECONDEXPANSION:\nall: D = parent\nt: E = own\nt: $$(D) $$(E)\n");
    let scope = Scope {
        targets: &["t", "all"],
        auto: None,
    };
    let (n, _) = db
        .expand_prereqs(&mut h, "$(D) $(E)", None, &scope, None)
        .expect("expand");
    assert_eq!(n, vec!["own"]);
    let (n, _) = db
        .expand_pattern_prereqs(&mut h, "$(D) $(E)", "t", &scope, None)
        .expect("expand");
    assert_eq!(n, vec!["parent", "own"]);
}

#[test]
fn makeflags_words_apply_after_reading() {
    // `VAR=value` words define command-line variables and -R drops the built-in variables, once the
    // makefiles are read (so the parse still saw CC).
    let (db, h) = load("MAKEFLAGS += X=1 -R\nX = 3\n$(info [$(CC)])\nCXX = mine\n");
    let x = db.var("X").expect("X");
    assert_eq!(
        (&*x.value, x.origin),
        ("1", rmake_makefile::Origin::CommandLine)
    );
    assert!(db.var("CC").is_none());
    assert_eq!(db.var("CXX").map(|v| &*v.value), Some("mine"));
    assert_eq!(h.out, "[cc]\n");
    let g = db.var("GNUMAKEFLAGS").expect("GNUMAKEFLAGS");
    assert_eq!(
        (&*g.value, g.origin),
        ("", rmake_makefile::Origin::Override)
    );
}

#[test]
fn vpath_escaped_percent_is_literal() {
    let (mut db, mut h) = load("vpath \\%lit dir\n");
    assert_eq!(db.vpath_dirs(&mut h, "%lit").expect("vpath"), vec!["dir"]);
    assert!(db.vpath_dirs(&mut h, "alit").expect("vpath").is_empty());
}

#[test]
fn undefine_spares_environment_under_e() {
    // make 4.3: with -e an environment variable counts as an override, so `undefine` leaves it.
    for (env_overrides, want) in [(false, None), (true, Some("env"))] {
        let mut h = MemHost::new().with_file("Makefile", "undefine FOO\n");
        let opts = LoadOptions {
            env: vec![("FOO".into(), "env".into())],
            env_overrides,
            ..LoadOptions::default()
        };
        let (db, _) = Database::load(&mut h, &opts).expect("load");
        assert_eq!(db.var("FOO").map(|v| &*v.value), want, "-e {env_overrides}");
    }
}

#[test]
fn tilde_names_home_directories() {
    // `~` is $(HOME) (the environment's when the variable is empty), `~user` that user's passwd home.
    let mut h = MemHost::new()
        .with_file(
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nbob:x:1:1::/home/bob:/bin/sh\n",
        )
        .with_file("Makefile", "all: ~bob/x ~/y ~nobody/z\nHOME =\nb: ~/w\n");
    let opts = LoadOptions {
        env: vec![("HOME".into(), "/h".into())],
        ..LoadOptions::default()
    };
    let (db, _) = Database::load(&mut h, &opts).expect("load");
    let all = &db.rules[db.rules_for("all")[0]];
    assert_eq!(all.prereqs, vec!["/home/bob/x", "/h/y", "~nobody/z"]);
    let b = &db.rules[db.rules_for("b")[0]];
    assert_eq!(b.prereqs, vec!["/h/w"]);
}
