//! Building the target graph from the database: explicit rules merged per target the way make's
//! read.c records them, double-colon chains, grouped targets, special-target flags.

use crate::build::file::{Cmds, Dep, File, FileId, Files};
use crate::db::Database;

fn add_deps(files: &mut Files, list: &mut Vec<Dep>, names: &[String], order_only: bool) {
    for n in names {
        let file = files.enter(n);
        list.push(Dep {
            file,
            order_only,
            changed: false,
            hidden: false,
        });
    }
}

/// Every file the makefiles mention, with the explicit rules attached.
pub(crate) fn build(db: &Database) -> Files {
    let mut files = Files::default();
    // Entries of double-colon chains: the last entry per name, to link the next one.
    let mut dc_tail: std::collections::HashMap<String, FileId> = std::collections::HashMap::new();
    for (ri, rule) in db.rules.iter().enumerate() {
        let cmds = rule.recipe.as_ref().map(|r| Cmds {
            recipe: r.clone(),
            loc: rule.loc.clone(),
        });
        for target in &rule.targets {
            let mut this = Vec::new();
            let pending = rule.second_expansion && !rule.prereq_text.trim().is_empty();
            if !rule.second_expansion {
                add_deps(&mut files, &mut this, &rule.prereqs, false);
                add_deps(&mut files, &mut this, &rule.order_only, true);
            }
            let id = if rule.double_colon {
                let new_id = match dc_tail.get(target) {
                    None => {
                        let id = files.enter(target);
                        files.get_mut(id).dc_head = Some(id);
                        id
                    }
                    Some(&tail) => {
                        let head = files.get(tail).dc_head.unwrap_or(tail);
                        let mut f = File::new(crate::build::file::strip_dot_slash(target));
                        f.dc_head = Some(head);
                        let id = files.push(f);
                        files.get_mut(tail).dc_next = Some(id);
                        id
                    }
                };
                dc_tail.insert(target.clone(), new_id);
                let f = files.get_mut(new_id);
                f.deps = this;
                f.cmds = cmds.clone();
                if pending {
                    f.pending_expansion.push((ri, 0));
                }
                new_id
            } else {
                let id = files.enter(target);
                let f = files.get_mut(id);
                if cmds.is_some() {
                    // make puts the prerequisites of the rule with the recipe first.
                    if pending {
                        f.pending_expansion.insert(0, (ri, 0));
                    } else {
                        for e in &mut f.pending_expansion {
                            e.1 += this.len();
                        }
                        this.append(&mut f.deps);
                        f.deps = this;
                    }
                } else if pending {
                    f.pending_expansion.push((ri, f.deps.len()));
                } else {
                    f.deps.append(&mut this);
                }
                if cmds.is_some() {
                    f.cmds = cmds.clone();
                }
                id
            };
            let f = files.get_mut(id);
            f.is_target = true;
            if rule.stem.is_some() && (f.stem.is_none() || rule.recipe.is_some()) {
                f.stem = rule.stem.clone();
            }
        }
        if rule.grouped && rule.recipe.is_some() {
            let ids: Vec<FileId> = rule
                .targets
                .iter()
                .filter_map(|t| files.lookup(t))
                .collect();
            for &id in &ids {
                let others: Vec<FileId> = ids.iter().copied().filter(|&o| o != id).collect();
                let f = files.get_mut(id);
                for o in others {
                    if !f.also_make.contains(&o) {
                        f.also_make.push(o);
                    }
                }
            }
        }
    }
    let sp = &db.special;
    for n in &sp.phony {
        let id = files.enter(n);
        let f = files.get_mut(id);
        // make never looks at a phony target's file: it counts as missing, always remade.
        f.phony = true;
        f.is_target = true;
        f.mtime = Some(crate::build::file::Time::Missing);
        f.mtime_before_update = Some(crate::build::file::Time::Missing);
    }
    for n in &sp.precious {
        let id = files.enter(n);
        files.get_mut(id).precious = true;
    }
    for n in &sp.intermediate {
        let id = files.enter(n);
        files.get_mut(id).intermediate = true;
    }
    for n in &sp.secondary {
        let id = files.enter(n);
        let f = files.get_mut(id);
        f.secondary = true;
        f.intermediate = true;
    }
    files
}
