//! Implicit-rule search, following GNU make 4.3's `pattern_search` (implicit.c): candidate rules
//! sorted by stem length, match-anything rules dropped when a specific rule matched, one pass
//! without and one with intermediate files, "ought to exist" prerequisites, vpath, chains.

use std::collections::HashSet;

use crate::build::dircache::DirCache;
use crate::build::file::Files;
use crate::build::pattern::{match_stem, subst};
use crate::db::{Database, Scope, VpathDirective};
use crate::host::Host;

/// Directory search settings, computed once per plan.
#[derive(Default, Clone, Debug)]
pub(crate) struct Vpath {
    /// `vpath PATTERN DIRS` directives in order.
    pub(crate) directives: Vec<VpathDirective>,
    /// `VPATH` directories.
    pub(crate) general: Vec<String>,
    /// `GPATH` directories.
    pub(crate) gpath: Vec<String>,
}

impl Vpath {
    /// Whether any directory search is configured at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.directives.is_empty() && self.general.is_empty()
    }

    /// The path under which `name` is found by directory search, if any.
    pub(crate) fn search(
        &self,
        host: &mut dyn Host,
        dirs: &mut DirCache,
        name: &str,
    ) -> Option<String> {
        if self.is_empty() || name.starts_with('/') || name.is_empty() {
            return None;
        }
        let from_directives = self
            .directives
            .iter()
            .filter(|v| v.matches(name))
            .flat_map(|v| v.dirs.iter());
        for dir in from_directives.chain(self.general.iter()) {
            let dir = dir.trim_end_matches('/');
            let cand = if dir.is_empty() {
                format!("/{name}")
            } else {
                format!("{dir}/{name}")
            };
            if dirs.exists(host, &cand) {
                return Some(cand);
            }
        }
        None
    }

    /// Whether `path` (found by vpath) lies in a `GPATH` directory.
    pub(crate) fn in_gpath(&self, path: &str) -> bool {
        let dir = crate::build::pattern::dir_part(path).trim_end_matches('/');
        self.gpath.iter().any(|g| g.trim_end_matches('/') == dir)
    }
}

/// A prerequisite chosen by the search.
#[derive(Clone, Debug)]
pub(crate) struct FoundDep {
    pub(crate) name: String,
    pub(crate) order_only: bool,
    /// Made through a chain: the rule found for this intermediate file.
    pub(crate) intermediate: Option<Box<Found>>,
}

/// The outcome of a successful search.
#[derive(Clone, Debug)]
pub(crate) struct Found {
    /// Index in `Database::pattern_rules`.
    pub(crate) rule: usize,
    /// Which target pattern of the rule matched.
    pub(crate) target_index: usize,
    /// `$*`, with the directory prepended when the pattern had no slash.
    pub(crate) stem: String,
    pub(crate) deps: Vec<FoundDep>,
    /// Other targets of the rule, with the stem substituted.
    pub(crate) also_make: Vec<String>,
}

struct Try {
    rule: usize,
    target_index: usize,
    stemlen: usize,
    lastslash: bool,
}

/// The state a search needs; `impossible` persists across searches (make's file_impossible).
pub(crate) struct Search<'a> {
    pub(crate) db: &'a mut Database,
    pub(crate) host: &'a mut dyn Host,
    pub(crate) files: &'a Files,
    pub(crate) dirs: &'a mut DirCache,
    pub(crate) vpath: &'a Vpath,
    pub(crate) impossible: &'a mut HashSet<String>,
    pub(crate) in_use: &'a mut Vec<bool>,
    /// The targets that needed the file searched for, nearest first: second expansion of a pattern
    /// rule's prerequisites sees their target-specific variables.
    pub(crate) parents: &'a [String],
    /// An error from second expansion of a rule's prerequisites: the search stops.
    pub(crate) error: Option<crate::error::Error>,
}

impl Search<'_> {
    /// make's pattern_search for `filename`; `recursions` > 0 when looking for an intermediate.
    pub(crate) fn find(&mut self, filename: &str, recursions: u32) -> Option<Found> {
        if recursions > 16 {
            return None;
        }
        let pathlen = filename.rfind('/').map_or(0, |i| i + 1);
        let has_slash = pathlen > 0;
        let mut tries: Vec<Try> = Vec::new();
        let mut specific = false;
        if self.in_use.len() < self.db.pattern_rules.len() {
            self.in_use.resize(self.db.pattern_rules.len(), false);
        }
        for (ri, rule) in self.db.pattern_rules.iter().enumerate() {
            let has_deps = !rule.prereqs.is_empty()
                || !rule.order_only.is_empty()
                || !rule.prereq_text.trim().is_empty();
            // A pattern rule with prerequisites but no recipe only cancels; never used.
            if has_deps && rule.recipe.is_none() {
                continue;
            }
            if self.in_use[ri] {
                continue;
            }
            for (ti, target) in rule.targets.iter().enumerate() {
                let anything = target == "%";
                if recursions > 0 && anything && !rule.terminal {
                    continue;
                }
                let lastslash = has_slash && !target.contains('/');
                let name = if lastslash {
                    &filename[pathlen..]
                } else {
                    filename
                };
                let Some(stem) = match_stem(target, name) else {
                    continue;
                };
                if stem.is_empty() {
                    continue;
                }
                if !anything {
                    specific = true;
                }
                if !has_deps && rule.recipe.is_none() {
                    continue;
                }
                tries.push(Try {
                    rule: ri,
                    target_index: ti,
                    stemlen: stem.len() + if lastslash { pathlen } else { 0 },
                    lastslash,
                });
            }
        }
        if tries.is_empty() {
            return None;
        }
        tries.sort_by_key(|t| t.stemlen);
        if specific {
            let rules = &self.db.pattern_rules;
            tries.retain(|t| {
                let r = &rules[t.rule];
                r.terminal || !r.targets.iter().any(|x| x == "%")
            });
        }
        for intermed_ok in [false, true] {
            for t in &tries {
                let rule = &self.db.pattern_rules[t.rule];
                if intermed_ok && rule.terminal {
                    continue;
                }
                let target = &rule.targets[t.target_index];
                let name = if t.lastslash {
                    &filename[pathlen..]
                } else {
                    filename
                };
                let Some(stem) = match_stem(target, name) else {
                    continue;
                };
                let dir = if t.lastslash {
                    &filename[..pathlen]
                } else {
                    ""
                };
                let full_stem = format!("{dir}{stem}");
                let also_make: Vec<String> = rule
                    .targets
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != t.target_index)
                    .map(|(_, p)| {
                        if t.lastslash {
                            format!("{dir}{}", subst(p, stem))
                        } else {
                            subst(p, stem)
                        }
                    })
                    .collect();
                let rule_idx = t.rule;
                let terminal = rule.terminal;
                let names = match self.prereq_names(rule_idx, stem, dir, filename) {
                    Some(n) => n,
                    None if self.error.is_some() => return None,
                    None => continue,
                };
                if names.is_empty() {
                    return Some(Found {
                        rule: rule_idx,
                        target_index: t.target_index,
                        stem: full_stem,
                        deps: Vec::new(),
                        also_make,
                    });
                }
                self.in_use[rule_idx] = true;
                let mut deps = Vec::new();
                let mut failed = false;
                for (dname, order_only) in names {
                    if self.impossible.contains(&dname) {
                        failed = true;
                        break;
                    }
                    if self.files.lookup(&dname).is_some() || self.dirs.exists(self.host, &dname) {
                        deps.push(FoundDep {
                            name: dname,
                            order_only,
                            intermediate: None,
                        });
                        continue;
                    }
                    if self.vpath.search(self.host, self.dirs, &dname).is_some() {
                        deps.push(FoundDep {
                            name: dname,
                            order_only,
                            intermediate: None,
                        });
                        continue;
                    }
                    if intermed_ok && !terminal {
                        let sub = self.find(&dname, recursions + 1);
                        if self.error.is_some() {
                            self.in_use[rule_idx] = false;
                            return None;
                        }
                        if let Some(found) = sub {
                            deps.push(FoundDep {
                                name: dname,
                                order_only,
                                intermediate: Some(Box::new(found)),
                            });
                            continue;
                        }
                        self.impossible.insert(dname);
                    }
                    failed = true;
                    break;
                }
                self.in_use[rule_idx] = false;
                if !failed {
                    return Some(Found {
                        rule: rule_idx,
                        target_index: t.target_index,
                        stem: full_stem,
                        deps,
                        also_make,
                    });
                }
            }
        }
        None
    }

    /// The prerequisite names of pattern rule `ri` for `stem` (dir prepended to `%` names).
    fn prereq_names(
        &mut self,
        ri: usize,
        stem: &str,
        dir: &str,
        target: &str,
    ) -> Option<Vec<(String, bool)>> {
        let rule = &self.db.pattern_rules[ri];
        let with_dir = |p: &str| {
            if p.contains('%') {
                format!("{dir}{}", subst(p, stem))
            } else {
                p.to_string()
            }
        };
        if !rule.second_expansion {
            let mut v: Vec<(String, bool)> =
                rule.prereqs.iter().map(|p| (with_dir(p), false)).collect();
            v.extend(rule.order_only.iter().map(|p| (with_dir(p), true)));
            return Some(v);
        }
        let text = rule.prereq_text.clone();
        let auto = crate::db::AutoVars {
            target: target.to_string(),
            stem: format!("{dir}{stem}"),
            ..Default::default()
        };
        let mut targets: Vec<&str> = vec![target];
        targets.extend(self.parents.iter().map(String::as_str));
        let scope = Scope {
            targets: &targets,
            auto: Some(&auto),
        };
        let full_stem = format!("{dir}{stem}");
        // make reports these errors without a location.
        let (normal, oo) = match self.db.expand_pattern_prereqs(self.host, &text, &full_stem, &scope, None) {
            Ok(x) => x,
            Err(e) => {
                self.error = Some(e);
                return None;
            }
        };
        let mut v: Vec<(String, bool)> = normal.into_iter().map(|p| (p, false)).collect();
        v.extend(oo.into_iter().map(|p| (p, true)));
        Some(v)
    }
}
