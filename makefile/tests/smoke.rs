//! Smoke tests of loading through the public API.

use rmake_makefile::{Database, LoadOptions, MemHost, Scope};

#[test]
fn loads_rules_and_variables() {
    let mut h = MemHost::new().with_file(
        "Makefile",
        "CC := gcc\nX = $(CC) -c\nall: a.o b.o | dir\n\t@echo $(X) $@\n\na.o: a.c\n",
    );
    let (mut db, report) = Database::load(&mut h, &LoadOptions::default()).expect("load");
    assert_eq!(report.makefiles.len(), 1);
    assert_eq!(db.default_goal().as_deref(), Some("all"));
    let r = &db.rules[db.rules_for("all")[0]];
    assert_eq!(r.prereqs, vec!["a.o", "b.o"]);
    assert_eq!(r.order_only, vec!["dir"]);
    assert_eq!(r.loc.to_string(), "Makefile:3");
    let recipe = r.recipe.as_ref().expect("recipe");
    assert_eq!(recipe.lines[0].text, "@echo $(X) $@");
    assert_eq!(recipe.lines[0].loc.to_string(), "Makefile:4");
    assert_eq!(
        db.expand(&mut h, "$(X)", &Scope::GLOBAL).expect("expand"),
        "gcc -c"
    );
}

#[test]
fn database_is_send_and_clone() {
    fn check<T: Send + Clone + 'static>() {}
    check::<Database>();
}
