//! The shared action cache end to end (issue 5): real coordinators and workers (or the embedded
//! farm), `rmake-remote` next to GNU make on the same trees, and the client's summary line
//! (`RMAKE_SUMMARY=1`) to count cache hits. Flags switched back (`CFLAGS=-O2`, `-O3`, `-O2`),
//! branches differing in an undeclared header, an order-only generated header, a recipe that
//! lists a directory, a script reading an undeclared file, a fresh clone of an unchanged tree
//! (depfiles come back) and two clients building different trees at once.

use std::path::Path;
use std::time::Duration;

use rmake_tests::cluster::{Cluster, Options};
use rmake_tests::fixture;
use rmake_tests::pair::{Comparison, Farm, Pair, Summary};
use rmake_tests::run::Status;
use rmake_tests::serial;

/// A cluster of `workers` workers with 4 slots each.
fn cluster(workers: usize) -> Cluster {
    Cluster::start(Options {
        workers,
        slots: 4,
        ..Options::default()
    })
    .unwrap_or_else(|e| panic!("starting the cluster: {e:#}"))
}

/// A pair holding `files`, with parallel output compared as sorted lines, `nocontent` files
/// compared for existence only, and the summary line on.
fn pair_of(files: &[(&str, &str)], nocontent: &[&str]) -> Pair {
    let mut pair = Pair::from_files(files).unwrap_or_else(|e| panic!("{e:#}"));
    pair.nocontent = nocontent.iter().map(|s| s.to_string()).collect();
    pair.unordered_stdout = true;
    pair.unordered_stderr = true;
    pair.env.push(("RMAKE_SUMMARY".into(), "1".into()));
    pair
}

/// Runs make and rmake-remote with `args`, asserts they agree, and returns the comparison
/// with rmake's summary line taken out (panics when there is none).
fn build(pair: &Pair, args: &[&str], farm: Farm<'_>, what: &str) -> (Comparison, Summary) {
    let mut cmp = pair
        .check(args, farm)
        .unwrap_or_else(|e| panic!("{what}: {e:#}"));
    let summary = cmp.take_summary().unwrap_or_else(|| {
        panic!(
            "{what}: no summary line with RMAKE_SUMMARY=1:\n{}",
            cmp.rmake.stderr
        )
    });
    cmp.assert_same(what);
    (cmp, summary)
}

/// The bytes of `rel` in `tree`.
fn read(tree: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(tree.join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// `rmake-remote --explain [args]` in rmake's tree of `pair`: its stdout.
fn explain(pair: &Pair, args: &[&str], farm: Farm<'_>) -> String {
    let mut all = vec!["--explain"];
    all.extend_from_slice(args);
    let out = pair
        .run_rmake(&all, farm)
        .unwrap_or_else(|e| panic!("--explain: {e:#}"));
    assert_eq!(
        out.status,
        Status::Code(0),
        "--explain failed:\n{}{}",
        out.stdout,
        out.stderr
    );
    out.stdout
}

// --- 1. flags switched back --------------------------------------------------------------

/// The Makefile of the seed article (`/work/shared/seeds/001_*`): sources found by
/// `$(shell find)`, a pattern rule with `$(CFLAGS)`, a link. The article links with `$<` (the
/// first object only), which fails to link as soon as there are two sources: `$^` here.
const SEED_MAKEFILE: &str = "\
SRCS := $(shell find . -type f -iname '*.c')
OBJS := $(patsubst %.c,%.o,$(SRCS))
CFLAGS := -O1
%.o: %.c
\t$(CC) -c $(CFLAGS) -o $@ $<
a.exe: $(OBJS)
\t$(CC) -o $@ $^
test: a.exe
\t@./a.exe
.PHONY: test
";

const SEED_MAIN: &str = "\
#include <stdio.h>
int square_sum(int n);
int cube(int x);
int main(void) { printf(\"sum=%d cube=%d\\n\", square_sum(10), cube(3)); return 0; }
";
const SEED_UTIL: &str = "\
int square_sum(int n) { int s = 0; for (int i = 1; i <= n; i++) s += i * i; return s; }
";
const SEED_CUBE: &str = "int cube(int x) { return x * x * x; }\n";

#[test]
fn flags_switched_back_compile_nothing_and_give_the_first_binary() {
    let _serial = serial();
    let cluster = cluster(2);
    let farm = Farm::Cluster(&cluster);
    let pair = pair_of(
        &[
            ("Makefile", SEED_MAKEFILE),
            ("main.c", SEED_MAIN),
            ("util.c", SEED_UTIL),
            ("lib/cube.c", SEED_CUBE),
        ],
        &["*.o", "a.exe"],
    );
    let clean = "rm -f *.o lib/*.o a.exe";

    let (_, first) = build(&pair, &["-j4", "CFLAGS=-O2"], farm, "CFLAGS=-O2");
    assert_eq!(
        (first.actions, first.hits, first.remote),
        (4, 0, 4),
        "the first build compiles three objects and links on the farm ({first:?})"
    );
    let binary = read(pair.rmake_tree(), "a.exe");

    pair.setup(clean).unwrap_or_else(|e| panic!("{e:#}"));
    let (_, o3) = build(&pair, &["-j4", "CFLAGS=-O3"], farm, "CFLAGS=-O3");
    assert_eq!(
        (o3.actions, o3.hits),
        (4, 0),
        "-O3 is another recipe: no hit ({o3:?})"
    );

    pair.setup(clean).unwrap_or_else(|e| panic!("{e:#}"));
    let (third, o2) = build(&pair, &["-j4", "CFLAGS=-O2"], farm, "CFLAGS=-O2 again");
    assert_eq!(
        (o2.actions, o2.hits, o2.remote, o2.local),
        (4, 4, 0, 0),
        "-O2 again: every action is a cache hit, nothing compiles ({o2:?})"
    );
    assert!(
        third.rmake.stdout.contains("cc -c -O2 -o main.o main.c"),
        "a hit prints the recipe's echo as if it ran:\n{}",
        third.rmake.stdout
    );
    assert_eq!(
        read(pair.rmake_tree(), "a.exe"),
        binary,
        "the binary of the third build is the first build's"
    );
    let run = pair
        .check(&["test"], farm)
        .unwrap_or_else(|e| panic!("{e:#}"));
    run.assert_same("running the program (a phony goal: on the client, no summary)");
    assert_eq!(run.rmake.stdout, "sum=385 cube=27\n");
}

// --- 2. branches differing in an undeclared header -------------------------------------------

const BRANCH_MAKEFILE: &str = "\
OBJS := main.o one.o two.o value.o
prog: $(OBJS)
\t$(CC) -o $@ $^
%.o: %.c
\t$(CC) -c -o $@ $<
run: prog
\t./prog
.PHONY: run
";

/// The files of a branch whose `config.h` (included by `value.c` only, named by no rule) says
/// `value`.
fn branch_files(value: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Makefile", BRANCH_MAKEFILE.to_string()),
        (
            "main.c",
            "#include <stdio.h>\nint one(void); int two(void); int value(void);\n\
             int main(void) { printf(\"one=%d two=%d value=%d\\n\", one(), two(), value()); return 0; }\n"
                .to_string(),
        ),
        ("one.c", "int one(void) { return 1; }\n".to_string()),
        ("two.c", "int two(void) { return 2; }\n".to_string()),
        (
            "value.c",
            "#include \"config.h\"\nint value(void) { return CONFIG_VALUE; }\n".to_string(),
        ),
        ("config.h", format!("#define CONFIG_VALUE {value}\n")),
    ]
}

fn branch_pair(value: &str) -> Pair {
    let files = branch_files(value);
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    pair_of(&refs, &["*.o", "prog"])
}

#[test]
fn a_branch_with_another_header_reuses_only_the_units_that_do_not_include_it() {
    let _serial = serial();
    let cluster = cluster(2);
    let farm = Farm::Cluster(&cluster);

    let a = branch_pair("11");
    let (ra, sa) = build(&a, &["-j4", "prog", "run"], farm, "branch A");
    assert!(
        ra.rmake.stdout.contains("one=1 two=2 value=11"),
        "{}",
        ra.rmake.stdout
    );
    assert_eq!((sa.actions, sa.hits), (5, 0), "branch A is cold ({sa:?})");

    let b = branch_pair("22");
    let (rb, sb) = build(&b, &["-j4", "prog", "run"], farm, "branch B");
    assert!(
        rb.rmake.stdout.contains("one=1 two=2 value=22"),
        "B's program prints B's header value:\n{}",
        rb.rmake.stdout
    );
    assert_eq!(
        (sb.actions, sb.hits, sb.remote),
        (5, 3, 2),
        "main.o, one.o and two.o are hits; value.o (it includes config.h) and prog run ({sb:?})"
    );

    let why = explain(&b, &[], farm);
    assert!(
        why.lines()
            .any(|l| l.starts_with("value.o: ") && l.contains("changed: config.h")),
        "--explain names the changed header for value.o:\n{why}"
    );
    assert!(
        !why.lines()
            .any(|l| l.starts_with("one.o:") || l.starts_with("main.o:")),
        "the hits are not explained as misses:\n{why}"
    );
    let only = explain(&b, &["--explain=value.o"], farm);
    assert!(
        only.contains("value.o: file it read changed: config.h"),
        "--explain=value.o:\n{only}"
    );
}

// --- 3. an order-only generated header -------------------------------------------------------

const GEN_MAKEFILE: &str = "\
OBJS := main.o a.o b.o
prog: $(OBJS)
\t$(CC) -o $@ $^
%.o: %.c | gen.h
\t$(CC) -c -o $@ $<
gen.h: gen.in
\tsed 's/^/#define /' gen.in > $@
run: prog
\t./prog
.PHONY: run
";

fn gen_pair(value: &str) -> Pair {
    let gen_in = format!("GEN_VALUE {value}\n");
    pair_of(
        &[
            ("Makefile", GEN_MAKEFILE),
            (
                "main.c",
                "#include <stdio.h>\n#include \"gen.h\"\nint a(void); int b(void);\n\
                 int main(void) { printf(\"gen=%d a=%d b=%d\\n\", GEN_VALUE, a(), b()); return 0; }\n",
            ),
            ("a.c", "#include \"gen.h\"\nint a(void) { return GEN_VALUE * 2; }\n"),
            ("b.c", "int b(void) { return 5; }\n"),
            ("gen.in", gen_in.as_str()),
        ],
        &["*.o", "prog"],
    )
}

#[test]
fn an_order_only_generated_header_is_right_on_fresh_clones() {
    let _serial = serial();
    let cluster = cluster(1);
    let farm = Farm::Cluster(&cluster);

    let first = gen_pair("3");
    let (r, s) = build(
        &first,
        &["-j4", "prog", "run"],
        farm,
        "fresh clone, gen.in = 3",
    );
    assert!(
        r.rmake.stdout.contains("gen=3 a=6 b=5"),
        "{}",
        r.rmake.stdout
    );
    assert_eq!((s.actions, s.hits), (5, 0), "cold ({s:?})");

    // The generator's input changes in that tree: make regenerates gen.h and, the objects
    // being order-only on it, relinks nothing; rmake does exactly as make.
    first
        .setup("echo 'GEN_VALUE 4' > gen.in")
        .unwrap_or_else(|e| panic!("{e:#}"));
    build(
        &first,
        &["-j4", "prog"],
        farm,
        "gen.in changed in the same tree",
    );

    // A fresh clone with the new gen.in: gen.h and the objects that include it are built
    // again (no stale object comes from the cache), and the program prints the new value.
    let second = gen_pair("4");
    let (r, s) = build(
        &second,
        &["-j4", "prog", "run"],
        farm,
        "fresh clone, gen.in = 4",
    );
    assert!(
        r.rmake.stdout.contains("gen=4 a=8 b=5"),
        "the objects use the new gen.h:\n{}",
        r.rmake.stdout
    );
    assert!(
        s.remote >= 4 && s.hits <= 1,
        "gen.h, main.o, a.o and prog run again; at most b.o is a hit ({s:?})"
    );
    let why = explain(&second, &[], farm);
    for obj in ["main.o", "a.o"] {
        assert!(
            why.lines().any(|l| l.starts_with(&format!("{obj}: "))),
            "{obj} missed and --explain says why:\n{why}"
        );
    }

    // A third clone identical to the second: everything from the cache, same program.
    let third = gen_pair("4");
    let (r, s) = build(&third, &["-j4", "prog", "run"], farm, "identical clone");
    assert!(
        r.rmake.stdout.contains("gen=4 a=8 b=5"),
        "{}",
        r.rmake.stdout
    );
    assert_eq!(
        (s.actions, s.hits),
        (5, 5),
        "an identical clone is all hits ({s:?})"
    );
}

// --- 4. a recipe that lists a directory --------------------------------------------------------

const LIST_MAKEFILE: &str = "list: ; ls src/*.c > $@\n";

#[test]
fn a_file_added_to_a_listed_directory_makes_the_listing_a_miss() {
    let _serial = serial();
    let cluster = cluster(1);
    let farm = Farm::Cluster(&cluster);
    let base = [
        ("Makefile", LIST_MAKEFILE),
        ("src/a.c", "int a;\n"),
        ("src/b.c", "int b;\n"),
        ("README", "not listed\n"),
    ];

    let first = pair_of(&base, &[]);
    let (_, s) = build(&first, &[], farm, "the first tree");
    assert_eq!((s.actions, s.hits), (1, 0), "{s:?}");
    assert_eq!(read(first.rmake_tree(), "list"), b"src/a.c\nsrc/b.c\n");

    // Another file's content changed (not one the listing read): still a hit.
    let mut edited = base.to_vec();
    edited[1] = ("src/a.c", "int a = 1;\n");
    let same_names = pair_of(&edited, &[]);
    let (_, s) = build(&same_names, &[], farm, "a file's content changed");
    assert_eq!(
        (s.actions, s.hits),
        (1, 1),
        "ls opened no file: only the names count ({s:?})"
    );

    let mut added = base.to_vec();
    added.push(("src/c.c", "int c;\n"));
    let more = pair_of(&added, &[]);
    let (_, s) = build(&more, &[], farm, "src/c.c added");
    assert_eq!(
        (s.actions, s.hits, s.remote),
        (1, 0, 1),
        "a file added to the listed directory is a miss ({s:?})"
    );
    assert_eq!(
        read(more.rmake_tree(), "list"),
        b"src/a.c\nsrc/b.c\nsrc/c.c\n"
    );
    let why = explain(&more, &[], farm);
    assert!(
        why.contains("list: directory listing changed: src/"),
        "--explain names the listing:\n{why}"
    );
}

// --- 5. a script reading an undeclared file ----------------------------------------------------

const PY_MAKEFILE: &str = "out: gen.py\n\tpython3 gen.py > $@\n";
const PY_GEN: &str = "\
with open('data.txt') as f:
    words = f.read().split()
print(len(words), ' '.join(reversed(words)))
";

#[test]
fn a_file_a_script_reads_is_part_of_the_key_on_the_embedded_farm() {
    let _serial = serial();
    // Every clone below uses one embedded farm: the same RMAKE_CACHE_DIR.
    let shared = tempfile::Builder::new()
        .prefix("rmake-cache-e2e-")
        .tempdir()
        .unwrap_or_else(|e| panic!("{e}"));
    let clone = |data: &str| {
        let mut p = pair_of(
            &[
                ("Makefile", PY_MAKEFILE),
                ("gen.py", PY_GEN),
                ("data.txt", data),
            ],
            &[],
        );
        p.env.push((
            "RMAKE_CACHE_DIR".into(),
            shared.path().display().to_string(),
        ));
        p
    };

    let a = clone("alpha beta gamma\n");
    let (_, s) = build(&a, &[], Farm::Embedded, "data.txt = alpha beta gamma");
    assert_eq!((s.actions, s.hits, s.remote), (1, 0, 1), "{s:?}");
    assert_eq!(read(a.rmake_tree(), "out"), b"3 gamma beta alpha\n");

    let b = clone("one two\n");
    let (_, s) = build(&b, &[], Farm::Embedded, "data.txt = one two");
    assert_eq!(
        (s.actions, s.hits, s.remote),
        (1, 0, 1),
        "another data.txt: a miss ({s:?})"
    );
    assert_eq!(read(b.rmake_tree(), "out"), b"2 two one\n");
    let why = explain(&b, &[], Farm::Embedded);
    assert!(
        why.contains("out: file it read changed: data.txt"),
        "--explain names data.txt:\n{why}"
    );

    let c = clone("alpha beta gamma\n");
    let (_, s) = build(&c, &[], Farm::Embedded, "identical clone");
    assert_eq!(
        (s.actions, s.hits, s.remote),
        (1, 1, 0),
        "the same data.txt: a hit ({s:?})"
    );
    assert_eq!(read(c.rmake_tree(), "out"), b"3 gamma beta alpha\n");
}

// --- 6. a fresh clone of an unchanged tree -----------------------------------------------------

fn cproj_pair() -> Pair {
    let mut pair = Pair::from_dir(&fixture("cproj")).unwrap_or_else(|e| panic!("{e:#}"));
    pair.nocontent = vec!["*.o".into(), "*.a".into(), "build/app".into()];
    pair.unordered_stdout = true;
    pair.unordered_stderr = true;
    pair.env.push(("RMAKE_SUMMARY".into(), "1".into()));
    pair
}

#[test]
fn a_fresh_clone_of_an_unchanged_tree_is_all_hits_and_gets_its_depfiles() {
    let _serial = serial();
    let cluster = cluster(2);
    let farm = Farm::Cluster(&cluster);

    let first = cproj_pair();
    let (r1, s1) = build(&first, &["-j8"], farm, "the first clone");
    assert_eq!(s1.hits, 0, "{s1:?}");

    let clone = cproj_pair();
    let (r2, s2) = build(&clone, &["-j8"], farm, "a fresh clone");
    assert!(
        s2.actions > 0 && s2.hits == s2.actions && s2.remote == 0,
        "a fresh clone rebuilds nothing: every action is a hit ({s2:?})"
    );
    let depfiles: Vec<&String> = r1
        .rmake
        .files
        .keys()
        .filter(|k| k.ends_with(".d"))
        .collect();
    assert!(depfiles.len() >= 4, "-MMD wrote depfiles: {depfiles:?}");
    for d in depfiles {
        assert_eq!(
            r2.rmake.files.get(d),
            r1.rmake.files.get(d),
            "the depfile {d} came back with the hit"
        );
    }

    // The depfiles are make's knowledge of the headers: touching one in the clone rebuilds
    // exactly what make rebuilds.
    clone
        .setup("touch include/mathutil.h")
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (r3, _) = build(&clone, &["-j8"], farm, "a header touched in the clone");
    assert!(
        r3.rmake.stdout.contains("-o build/src/util/mathutil.o")
            && !r3.rmake.stdout.contains("-o build/src/core/list.o"),
        "the depfiles that came back name the header:\n{}",
        r3.rmake.stdout
    );
}

// --- 7. two clients at once --------------------------------------------------------------------

#[test]
fn two_clients_building_different_trees_at_once_are_both_right() {
    let _serial = serial();
    let cluster = cluster(2);
    let farm = Farm::Cluster(&cluster);

    let c = cproj_pair();
    let b = branch_pair("33");
    let (c_args, b_args) = (["-j8", "all", "check"], ["-j4", "prog", "run"]);
    let c_make = c.run_make(&c_args).unwrap_or_else(|e| panic!("{e:#}"));
    let b_make = b.run_make(&b_args).unwrap_or_else(|e| panic!("{e:#}"));

    let c_run = c
        .spawn_rmake(&c_args, farm)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let b_run = b
        .spawn_rmake(&b_args, farm)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let wait = Duration::from_secs(60);
    let c_out = c_run.wait(wait).unwrap_or_else(|e| panic!("{e:#}"));
    let b_out = b_run.wait(wait).unwrap_or_else(|e| panic!("{e:#}"));

    for (pair, args, make, rmake, name) in [
        (&c, &c_args[..], c_make, c_out, "the C project"),
        (&b, &b_args[..], b_make, b_out, "the branch project"),
    ] {
        let mut cmp = pair
            .compare(args, make, rmake)
            .unwrap_or_else(|e| panic!("{e:#}"));
        let s = cmp
            .take_summary()
            .unwrap_or_else(|| panic!("{name}: no summary:\n{}", cmp.rmake.stderr));
        cmp.assert_same(name);
        assert!(s.remote > 0, "{name} ran on the farm ({s:?})");
    }
    assert_eq!(
        read(c.rmake_tree(), "build/check.out"),
        b"app 1.4.2: sum=30 dots=2\n",
        "the C project's program, built on the farm, ran on the client"
    );
    let b_prog = std::process::Command::new(b.rmake_tree().join("prog"))
        .output()
        .unwrap_or_else(|e| panic!("running prog: {e}"));
    assert_eq!(
        String::from_utf8_lossy(&b_prog.stdout),
        "one=1 two=2 value=33\n"
    );
}
