//! Special targets (`.PHONY`, `.SUFFIXES`, `.DEFAULT`, ...) as a rule naming them records them.

use crate::db::{Database, Rule};

impl Database {
    /// Record what a rule whose targets include special targets means.
    pub(crate) fn apply_specials(&mut self, rule: &Rule, idx: usize) {
        if !rule.targets.iter().any(|t| t.starts_with('.')) {
            return;
        }
        let names: Vec<String> = rule
            .prereqs
            .iter()
            .chain(rule.order_only.iter())
            .cloned()
            .collect();
        for t in &rule.targets {
            let sp = &mut self.special;
            match t.as_str() {
                ".PHONY" => sp.phony.extend(names.iter().cloned()),
                ".PRECIOUS" => sp.precious.extend(names.iter().cloned()),
                ".INTERMEDIATE" => sp.intermediate.extend(names.iter().cloned()),
                ".SECONDARY" => {
                    if names.is_empty() {
                        sp.secondary_all = true;
                    }
                    sp.secondary.extend(names.iter().cloned());
                }
                ".NOTINTERMEDIATE" => {
                    if names.is_empty() {
                        sp.notintermediate_all = true;
                    }
                    sp.notintermediate.extend(names.iter().cloned());
                }
                ".IGNORE" => {
                    if names.is_empty() {
                        sp.ignore_all = true;
                    }
                    sp.ignore.extend(names.iter().cloned());
                }
                ".SILENT" => {
                    if names.is_empty() {
                        sp.silent_all = true;
                    }
                    sp.silent.extend(names.iter().cloned());
                }
                ".LOW_RESOLUTION_TIME" => sp.low_resolution_time.extend(names.iter().cloned()),
                ".DELETE_ON_ERROR" => sp.delete_on_error = true,
                ".EXPORT_ALL_VARIABLES" => sp.export_all = true,
                ".NOTPARALLEL" => sp.notparallel = true,
                ".ONESHELL" => sp.oneshell = true,
                ".POSIX" => {
                    sp.posix = true;
                    // make switches some defaults to the POSIX ones (it overrides only defaults).
                    for (name, value) in [
                        (".SHELLFLAGS", "-ec"),
                        ("ARFLAGS", "-rvU"),
                        ("CC", "c99"),
                        ("CFLAGS", "-O1"),
                        ("FC", "fort77"),
                        ("FFLAGS", "-O1"),
                    ] {
                        if self
                            .globals
                            .get(name)
                            .is_none_or(|v| v.origin <= crate::vars::Origin::Default)
                        {
                            self.set_global(
                                name,
                                value,
                                crate::vars::Flavor::Simple,
                                crate::vars::Origin::Default,
                            );
                        }
                    }
                }
                ".SECONDEXPANSION" => sp.second_expansion = true,
                ".SUFFIXES" => {
                    // make keeps repeated suffixes in its list; conversion walks it as is.
                    if names.is_empty() {
                        self.state.suffixes_raw.clear();
                    } else {
                        self.state.suffixes_raw.extend(names.iter().cloned());
                    }
                    if names.is_empty() {
                        sp.suffixes.clear();
                    } else {
                        for n in &names {
                            if !sp.suffixes.contains(n) {
                                sp.suffixes.push(n.clone());
                            }
                        }
                    }
                }
                ".DEFAULT" if rule.recipe.is_some() => sp.default_rule = Some(idx),
                _ => {}
            }
        }
    }
}
