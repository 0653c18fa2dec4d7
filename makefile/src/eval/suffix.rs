//! The end of loading: converting suffix rules (`.c.o:`) to pattern rules per the final `.SUFFIXES`, and
//! installing make's default pattern rules, in make's order.

use crate::db::{Database, PatternRule, Recipe};
use std::sync::Arc;

impl Database {
    /// The recipe of the last rule for `name` that has one.
    fn last_recipe(&self, name: &str) -> Option<(Arc<Recipe>, bool)> {
        let idxs = self.by_target.get(name)?;
        idxs.iter().rev().find_map(|&i| {
            let r = &self.rules[i];
            r.recipe
                .clone()
                .map(|rc| (rc, self.state.builtin_suffix_rules.contains(&i)))
        })
    }

    fn suffix_rule(
        &mut self,
        target: String,
        dep: Option<String>,
        recipe: Option<(Arc<Recipe>, bool)>,
    ) {
        let builtin = recipe.as_ref().is_some_and(|(_, b)| *b);
        let loc = recipe
            .as_ref()
            .map(|(r, _)| r.loc.clone())
            .unwrap_or_else(crate::builtin::builtin_loc);
        let prereqs: Vec<String> = dep.iter().cloned().collect();
        let pr = PatternRule {
            loc,
            targets: vec![target],
            prereq_text: prereqs.join(" "),
            prereqs,
            order_only: Vec::new(),
            recipe: recipe.map(|(r, _)| r),
            terminal: false,
            builtin,
            from_suffix: true,
            second_expansion: false,
        };
        self.add_pattern_rule(pr, false);
    }

    /// make's `convert_to_pattern` and `install_default_implicit_rules`.
    pub(crate) fn finish_load(&mut self, host: &mut dyn crate::host::Host) {
        // After reading, MAKEFLAGS gets its ` -- VAR=value` part back (make's define_makeflags).
        if let Some(v) = self
            .globals
            .get_mut("MAKEFLAGS")
            .filter(|v| v.origin == crate::vars::Origin::File)
        {
            if *v.value == *self.state.makeflags_parse {
                v.value = std::sync::Arc::from(self.state.makeflags_full.as_str());
            } else if !self.state.makeflags_overrides.is_empty() && !v.value.contains(" -- ") {
                v.value = std::sync::Arc::from(
                    format!("{}{}", v.value, self.state.makeflags_overrides).as_str(),
                );
            }
        }
        let suffixes = self.state.suffixes_raw.clone();
        for s in &suffixes {
            self.suffix_rule(format!("%{s}"), None, None);
            if let Some(rc) = self.last_recipe(s) {
                self.suffix_rule("%".to_string(), Some(format!("%{s}")), Some(rc));
            }
            for s2 in &suffixes {
                let name = format!("{s}{s2}");
                if let Some(rc) = self.last_recipe(&name) {
                    // A two-suffix rule's own prerequisites are dropped, with make's warning (once per
                    // pair of entries in the suffix list, repetitions included).
                    let has_prereqs = self.rules_for(&name).iter().any(|&i| {
                        let r = &self.rules[i];
                        !r.prereqs.is_empty() || !r.order_only.is_empty()
                    });
                    if has_prereqs {
                        host.stderr(&format!(
                            "{}: warning: ignoring prerequisites on suffix rule definition\n",
                            rc.0.loc
                        ));
                    }
                    self.suffix_rule(format!("%{s2}"), Some(format!("%{s}")), Some(rc));
                }
            }
        }
        if !self.state.no_builtin_rules {
            crate::builtin::install_pattern_rules(self);
        }
    }
}
