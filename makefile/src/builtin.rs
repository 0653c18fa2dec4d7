//! make 4.3's built-in variables and rules (as `make -p -f /dev/null` lists them), installed unless
//! `-R`/`-r`: suffix rules are entered as rules and converted to pattern rules after reading.

use crate::db::{Database, PatternRule, Recipe, RecipeLine, Rule};
use crate::loc::Loc;
use crate::vars::{Flavor, Origin, Variable};
use std::sync::Arc;

/// Built-in variables: (name, value, simple).
const VARIABLES: &[(&str, &str, bool)] = &[
    (".LIBPATTERNS", "lib%.so lib%.a", false),
    ("AR", "ar", false),
    ("ARFLAGS", "rv", false),
    ("AS", "as", false),
    ("CC", "cc", false),
    ("CHECKOUT,v", "+$(if $(wildcard $@),,$(CO) $(COFLAGS) $< $@)", false),
    ("CO", "co", false),
    ("COFLAGS", "", false),
    ("COMPILE.C", "$(COMPILE.cc)", false),
    ("COMPILE.F", "$(FC) $(FFLAGS) $(CPPFLAGS) $(TARGET_ARCH) -c", false),
    ("COMPILE.S", "$(CC) $(ASFLAGS) $(CPPFLAGS) $(TARGET_MACH) -c", false),
    ("COMPILE.c", "$(CC) $(CFLAGS) $(CPPFLAGS) $(TARGET_ARCH) -c", false),
    ("COMPILE.cc", "$(CXX) $(CXXFLAGS) $(CPPFLAGS) $(TARGET_ARCH) -c", false),
    ("COMPILE.cpp", "$(COMPILE.cc)", false),
    ("COMPILE.def", "$(M2C) $(M2FLAGS) $(DEFFLAGS) $(TARGET_ARCH)", false),
    ("COMPILE.f", "$(FC) $(FFLAGS) $(TARGET_ARCH) -c", false),
    ("COMPILE.m", "$(OBJC) $(OBJCFLAGS) $(CPPFLAGS) $(TARGET_ARCH) -c", false),
    ("COMPILE.mod", "$(M2C) $(M2FLAGS) $(MODFLAGS) $(TARGET_ARCH)", false),
    ("COMPILE.p", "$(PC) $(PFLAGS) $(CPPFLAGS) $(TARGET_ARCH) -c", false),
    ("COMPILE.r", "$(FC) $(FFLAGS) $(RFLAGS) $(TARGET_ARCH) -c", false),
    ("COMPILE.s", "$(AS) $(ASFLAGS) $(TARGET_MACH)", false),
    ("CPP", "$(CC) -E", false),
    ("CTANGLE", "ctangle", false),
    ("CWEAVE", "cweave", false),
    ("CXX", "g++", false),
    ("F77", "$(FC)", false),
    ("F77FLAGS", "$(FFLAGS)", false),
    ("FC", "f77", false),
    ("GET", "get", false),
    ("LD", "ld", false),
    ("LEX", "lex", false),
    ("LEX.l", "$(LEX) $(LFLAGS) -t", false),
    ("LEX.m", "$(LEX) $(LFLAGS) -t", false),
    ("LINK.C", "$(LINK.cc)", false),
    ("LINK.F", "$(FC) $(FFLAGS) $(CPPFLAGS) $(LDFLAGS) $(TARGET_ARCH)", false),
    ("LINK.S", "$(CC) $(ASFLAGS) $(CPPFLAGS) $(LDFLAGS) $(TARGET_MACH)", false),
    ("LINK.c", "$(CC) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS) $(TARGET_ARCH)", false),
    ("LINK.cc", "$(CXX) $(CXXFLAGS) $(CPPFLAGS) $(LDFLAGS) $(TARGET_ARCH)", false),
    ("LINK.cpp", "$(LINK.cc)", false),
    ("LINK.f", "$(FC) $(FFLAGS) $(LDFLAGS) $(TARGET_ARCH)", false),
    ("LINK.m", "$(OBJC) $(OBJCFLAGS) $(CPPFLAGS) $(LDFLAGS) $(TARGET_ARCH)", false),
    ("LINK.o", "$(CC) $(LDFLAGS) $(TARGET_ARCH)", false),
    ("LINK.p", "$(PC) $(PFLAGS) $(CPPFLAGS) $(LDFLAGS) $(TARGET_ARCH)", false),
    ("LINK.r", "$(FC) $(FFLAGS) $(RFLAGS) $(LDFLAGS) $(TARGET_ARCH)", false),
    ("LINK.s", "$(CC) $(ASFLAGS) $(LDFLAGS) $(TARGET_MACH)", false),
    ("LINT", "lint", false),
    ("LINT.c", "$(LINT) $(LINTFLAGS) $(CPPFLAGS) $(TARGET_ARCH)", false),
    ("M2C", "m2c", false),
    ("MAKEINFO", "makeinfo", false),
    ("OBJC", "cc", false),
    ("OUTPUT_OPTION", "-o $@", false),
    ("PC", "pc", false),
    ("PREPROCESS.F", "$(FC) $(FFLAGS) $(CPPFLAGS) $(TARGET_ARCH) -F", false),
    ("PREPROCESS.S", "$(CC) -E $(CPPFLAGS)", false),
    ("PREPROCESS.r", "$(FC) $(FFLAGS) $(RFLAGS) $(TARGET_ARCH) -F", false),
    ("RM", "rm -f", false),
    ("SUFFIXES", ".out .a .ln .o .c .cc .C .cpp .p .f .F .m .r .y .l .ym .yl .s .S .mod .sym .def .h .info .dvi .tex .texinfo .texi .txinfo .w .ch .web .sh .elc .el", true),
    ("TANGLE", "tangle", false),
    ("TEX", "tex", false),
    ("TEXI2DVI", "texi2dvi", false),
    ("WEAVE", "weave", false),
    ("YACC", "yacc", false),
    ("YACC.m", "$(YACC) $(YFLAGS)", false),
    ("YACC.y", "$(YACC) $(YFLAGS)", false),
];

/// The default suffix list.
pub(crate) const SUFFIXES: &str = ".out .a .ln .o .c .cc .C .cpp .p .f .F .m .r .y .l .ym .yl .s .S .mod .sym .def .h .info .dvi .tex .texinfo .texi .txinfo .w .ch .web .sh .elc .el";

/// Built-in suffix rules: (target, recipe lines).
const SUFFIX_RULES: &[(&str, &[&str])] = &[
    (".C", &["$(LINK.C) $^ $(LOADLIBES) $(LDLIBS) -o $@"]),
    (".C.o", &["$(COMPILE.C) $(OUTPUT_OPTION) $<"]),
    (".F", &["$(LINK.F) $^ $(LOADLIBES) $(LDLIBS) -o $@"]),
    (".F.f", &["$(PREPROCESS.F) $(OUTPUT_OPTION) $<"]),
    (".F.o", &["$(COMPILE.F) $(OUTPUT_OPTION) $<"]),
    (".S", &["$(LINK.S) $^ $(LOADLIBES) $(LDLIBS) -o $@"]),
    (".S.o", &["$(COMPILE.S) -o $@ $<"]),
    (".S.s", &["$(PREPROCESS.S) $< > $@"]),
    (".c", &["$(LINK.c) $^ $(LOADLIBES) $(LDLIBS) -o $@"]),
    (".c.ln", &["$(LINT.c) -C$* $<"]),
    (".c.o", &["$(COMPILE.c) $(OUTPUT_OPTION) $<"]),
    (".cc", &["$(LINK.cc) $^ $(LOADLIBES) $(LDLIBS) -o $@"]),
    (".cc.o", &["$(COMPILE.cc) $(OUTPUT_OPTION) $<"]),
    (".cpp", &["$(LINK.cpp) $^ $(LOADLIBES) $(LDLIBS) -o $@"]),
    (".cpp.o", &["$(COMPILE.cpp) $(OUTPUT_OPTION) $<"]),
    (".def.sym", &["$(COMPILE.def) -o $@ $<"]),
    (".f", &["$(LINK.f) $^ $(LOADLIBES) $(LDLIBS) -o $@"]),
    (".f.o", &["$(COMPILE.f) $(OUTPUT_OPTION) $<"]),
    (".l.c", &["@$(RM) $@ ", " $(LEX.l) $< > $@"]),
    (
        ".l.ln",
        &[
            "@$(RM) $*.c",
            " $(LEX.l) $< > $*.c",
            "$(LINT.c) -i $*.c -o $@",
            " $(RM) $*.c",
        ],
    ),
    (".l.r", &["$(LEX.l) $< > $@ ", " mv -f lex.yy.r $@"]),
    (".lm.m", &["@$(RM) $@ ", " $(LEX.m) $< > $@"]),
    (".m", &["$(LINK.m) $^ $(LOADLIBES) $(LDLIBS) -o $@"]),
    (".m.o", &["$(COMPILE.m) $(OUTPUT_OPTION) $<"]),
    (".mod", &["$(COMPILE.mod) -o $@ -e $@ $^"]),
    (".mod.o", &["$(COMPILE.mod) -o $@ $<"]),
    (".o", &["$(LINK.o) $^ $(LOADLIBES) $(LDLIBS) -o $@"]),
    (".p", &["$(LINK.p) $^ $(LOADLIBES) $(LDLIBS) -o $@"]),
    (".p.o", &["$(COMPILE.p) $(OUTPUT_OPTION) $<"]),
    (".r", &["$(LINK.r) $^ $(LOADLIBES) $(LDLIBS) -o $@"]),
    (".r.f", &["$(PREPROCESS.r) $(OUTPUT_OPTION) $<"]),
    (".r.o", &["$(COMPILE.r) $(OUTPUT_OPTION) $<"]),
    (".s", &["$(LINK.s) $^ $(LOADLIBES) $(LDLIBS) -o $@"]),
    (".s.o", &["$(COMPILE.s) -o $@ $<"]),
    (".sh", &["cat $< >$@ ", " chmod a+x $@"]),
    (".tex.dvi", &["$(TEX) $<"]),
    (".texi.dvi", &["$(TEXI2DVI) $(TEXI2DVI_FLAGS) $<"]),
    (".texi.info", &["$(MAKEINFO) $(MAKEINFO_FLAGS) $< -o $@"]),
    (".texinfo.dvi", &["$(TEXI2DVI) $(TEXI2DVI_FLAGS) $<"]),
    (".texinfo.info", &["$(MAKEINFO) $(MAKEINFO_FLAGS) $< -o $@"]),
    (".txinfo.dvi", &["$(TEXI2DVI) $(TEXI2DVI_FLAGS) $<"]),
    (".txinfo.info", &["$(MAKEINFO) $(MAKEINFO_FLAGS) $< -o $@"]),
    (".w.c", &["$(CTANGLE) $< - $@"]),
    (".w.tex", &["$(CWEAVE) $< - $@"]),
    (".web.p", &["$(TANGLE) $<"]),
    (".web.tex", &["$(WEAVE) $<"]),
    (".y.c", &["$(YACC.y) $< ", " mv -f y.tab.c $@"]),
    (
        ".y.ln",
        &[
            "$(YACC.y) $< ",
            " $(LINT.c) -C$* y.tab.c ",
            " $(RM) y.tab.c",
        ],
    ),
    (".ym.m", &["$(YACC.m) $< ", " mv -f y.tab.c $@"]),
];
/// make's default pattern rules (`default_pattern_rules`), then the terminal ones (`default_terminal_rules`).
const PATTERN_RULES: &[(&str, &str, &[&str], bool)] = &[
    ("%.out", "%", &["@rm -f $@", " cp $< $@"], false),
    ("%.c", "%.w %.ch", &["$(CTANGLE) $^ $@"], false),
    ("%.tex", "%.w %.ch", &["$(CWEAVE) $^ $@"], false),
    ("%", "%,v", &["$(CHECKOUT,v)"], true),
    ("%", "RCS/%,v", &["$(CHECKOUT,v)"], true),
    ("%", "RCS/%", &["$(CHECKOUT,v)"], true),
    (
        "%",
        "s.%",
        &["$(GET) $(GFLAGS) $(SCCS_OUTPUT_OPTION) $<"],
        true,
    ),
    (
        "%",
        "SCCS/s.%",
        &["$(GET) $(GFLAGS) $(SCCS_OUTPUT_OPTION) $<"],
        true,
    ),
];

/// The location make gives built-in rules.
pub(crate) fn builtin_loc() -> Loc {
    Loc::new("<builtin>", 0)
}

fn recipe(lines: &[&str]) -> Arc<Recipe> {
    let loc = builtin_loc();
    Arc::new(Recipe {
        loc: loc.clone(),
        lines: lines
            .iter()
            .map(|l| RecipeLine {
                loc: loc.clone(),
                text: (*l).to_string(),
            })
            .collect(),
    })
}

/// Define the built-in variables (origin `default`).
pub(crate) fn define_variables(db: &mut Database) {
    for (name, value, simple) in VARIABLES {
        let flavor = if *simple {
            Flavor::Simple
        } else {
            Flavor::Recursive
        };
        if db
            .globals
            .get(*name)
            .is_none_or(|v| v.origin <= Origin::Default)
        {
            db.globals.insert(
                (*name).to_string(),
                Variable::new(*value, flavor, Origin::Default),
            );
        }
    }
    if !db.globals.contains_key("SUFFIXES") {
        db.set_global("SUFFIXES", SUFFIXES, Flavor::Simple, Origin::Default);
    }
}

/// Whether `name` is one of make's built-in variables (`CC`, `COMPILE.c`...).
pub(crate) fn is_builtin_variable(name: &str) -> bool {
    VARIABLES.iter().any(|(n, _, _)| *n == name)
}

/// make's `undefine_default_variables` (`-R` set by a makefile): the built-in variables that
/// nothing redefined go away.
pub(crate) fn undefine_variables(db: &mut Database) {
    for (name, _, _) in VARIABLES {
        if db
            .globals
            .get(*name)
            .is_some_and(|v| v.origin == Origin::Default)
        {
            db.globals.remove(*name);
        }
    }
}

/// Enter the built-in suffix rules and the default `.SUFFIXES` list.
pub(crate) fn define_suffix_rules(db: &mut Database) {
    db.special.suffixes = SUFFIXES.split(' ').map(str::to_string).collect();
    db.state.suffixes_raw = db.special.suffixes.clone();
    for (target, lines) in SUFFIX_RULES {
        let idx = db.rules.len();
        db.rules.push(Rule {
            loc: builtin_loc(),
            targets: vec![(*target).to_string()],
            prereqs: Vec::new(),
            order_only: Vec::new(),
            prereq_text: String::new(),
            static_pattern: None,
            stem: None,
            recipe: Some(recipe(lines)),
            double_colon: false,
            grouped: false,
            second_expansion: false,
        });
        db.by_target
            .entry((*target).to_string())
            .or_default()
            .push(idx);
        db.state.builtin_suffix_rules.push(idx);
    }
}

/// Append make's default pattern rules (not replacing user rules with the same targets and prerequisites).
pub(crate) fn install_pattern_rules(db: &mut Database) {
    for (target, deps, lines, terminal) in PATTERN_RULES {
        let prereqs: Vec<String> = deps.split(' ').map(str::to_string).collect();
        let pr = PatternRule {
            loc: builtin_loc(),
            targets: vec![(*target).to_string()],
            prereqs,
            order_only: Vec::new(),
            prereq_text: (*deps).to_string(),
            recipe: Some(recipe(lines)),
            terminal: *terminal,
            builtin: true,
            from_suffix: false,
            second_expansion: false,
        };
        db.add_pattern_rule(pr, false);
    }
}
