//! Rule lines: splitting targets from prerequisites (word by word, as make expands them), target-specific
//! assignments, static pattern rules, and recording rules and pattern rules.

use super::assign::parse_var_assignment;
use super::recipe_text::{collapse_in_references, strip_continuation_prefix};
use crate::db::{Database, PatternRule, Recipe, RecipeLine, Rule, Scope};
use crate::error::{Error, ErrorKind};
use crate::expand::Ctx;
use crate::host::Host;
use crate::lexer::{collapse_continuations, find_unquoted};
use crate::loc::Loc;
use crate::pattern::{self, find_percent, is_space_char as ws, words};
use std::sync::Arc;

/// A rule being read: its line has been parsed, its recipe lines are still coming.
#[derive(Clone, Debug)]
pub(crate) struct PendingRule {
    pub loc: Loc,
    pub targets: Vec<String>,
    pub pattern: bool,
    pub static_pattern: Option<String>,
    pub prereq_text: String,
    pub double_colon: bool,
    pub grouped: bool,
    pub recipe: Option<Recipe>,
    pub second_expansion: bool,
}

/// What a rule line turned out to be.
pub(crate) enum RuleLine {
    /// Expanded to nothing.
    Nothing,
    /// `: prereqs` — a rule without targets, whose recipe is ignored.
    NoTargets,
    /// A target-specific assignment (already applied).
    TargetVar,
    /// A rule waiting for its recipe.
    Rule(PendingRule),
}

/// Drop a leading `./` (make treats `./x` and `x` as one file).
pub(crate) fn strip_dot_slash(w: &str) -> &str {
    let mut w = w;
    while w.len() > 2 && w.starts_with("./") {
        w = w[2..].trim_start_matches('/');
    }
    w
}

fn has_glob(w: &str) -> bool {
    w.bytes().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// The next "make word" of a rule line: `(start, end, is_colon)`.
fn next_mword(b: &[u8], mut i: usize) -> Option<(usize, usize, bool)> {
    while i < b.len() && pattern::is_space(b[i]) {
        i += 1;
    }
    if i >= b.len() {
        return None;
    }
    if b[i] == b':' {
        return Some((i, i + 1, true));
    }
    let start = i;
    while i < b.len() {
        let c = b[i];
        if pattern::is_space(c) || c == b':' {
            break;
        }
        if c == b'\\' && i + 1 < b.len() {
            i += 2;
            continue;
        }
        if c == b'$' && i + 1 < b.len() {
            let o = b[i + 1];
            if o == b'(' || o == b'{' {
                i = crate::lexer::skip_reference(b, i);
                continue;
            }
            i += 2;
            continue;
        }
        i += 1;
    }
    Some((start, i.min(b.len()), false))
}

impl Database {
    /// Parse a rule line (raw, with the recipe prefix not stripped).
    pub(crate) fn parse_rule_line(
        &mut self,
        host: &mut dyn Host,
        raw: &str,
        loc: &Loc,
    ) -> Result<RuleLine, Error> {
        let mut line = raw.to_string();
        let mut cmd: Option<String> = None;
        if let Some(i) = find_unquoted(&mut line, b";#", true) {
            if line.as_bytes()[i] == b'#' {
                line.truncate(i);
            } else {
                cmd = Some(line[i + 1..].to_string());
                line.truncate(i);
            }
        }
        let line = collapse_continuations(&line).into_owned();
        let scope = Scope::GLOBAL;
        let ctx = Ctx {
            scope: &scope,
            loc: Some(loc),
            var_loc: None,
        };
        let b = line.as_bytes();

        // Expand word by word until a colon shows up.
        let mut targets_text = String::new();
        let mut rest_start: Option<(String, usize)> = None;
        let mut i = 0;
        let mut first = true;
        while let Some((s, e, is_colon)) = next_mword(b, i) {
            if is_colon {
                if first {
                    return Ok(RuleLine::NoTargets);
                }
                rest_start = Some((String::new(), s));
                break;
            }
            first = false;
            let mut w = String::new();
            self.expand_into(host, &line[s..e], &ctx, &mut w)?;
            if cmd.is_none() {
                if let Some(si) = find_unquoted(&mut w, b";", false) {
                    // A semicolon produced by the expansion starts the recipe.
                    let mut tail = w[si + 1..].to_string();
                    self.expand_into(host, &line[e..], &ctx, &mut tail)?;
                    cmd = Some(tail);
                    w.truncate(si);
                    let ci = find_unquoted(&mut w, b":", false);
                    if !targets_text.is_empty() {
                        targets_text.push(' ');
                    }
                    match ci {
                        Some(ci) => {
                            targets_text.push_str(&w[..ci]);
                            rest_start = Some((w[ci..].to_string(), line.len()));
                        }
                        None => targets_text.push_str(&w),
                    }
                    break;
                }
            }
            if !targets_text.is_empty() {
                targets_text.push(' ');
            }
            if let Some(ci) = find_unquoted(&mut w, b":", false) {
                targets_text.push_str(&w[..ci]);
                rest_start = Some((w[ci..].to_string(), e));
                break;
            }
            targets_text.push_str(&w);
            i = e;
        }
        let Some((head, from)) = rest_start else {
            if targets_text.trim_matches(ws).is_empty() {
                return Ok(RuleLine::Nothing);
            }
            let prefix_tab = self.recipe_prefix() == '\t';
            if prefix_tab && raw.starts_with("        ") {
                return Err(Error::new(
                    Some(loc.clone()),
                    ErrorKind::MissingSeparatorTab,
                ));
            }
            return Err(Error::new(Some(loc.clone()), ErrorKind::MissingSeparator));
        };
        // `head` starts at the colon (from an expansion) or is empty (the colon is at `from` in the line).
        let mut rest = if head.is_empty() {
            line[from..].to_string()
        } else {
            format!("{head}{}", &line[from..])
        };
        // rest begins with ':'
        rest.remove(0);
        let mut double_colon = false;
        if rest.starts_with(':') {
            rest.remove(0);
            double_colon = true;
        }
        let mut grouped = false;
        let tt = targets_text.trim_end_matches(ws);
        if let Some(t) = tt.strip_suffix('&') {
            grouped = true;
            targets_text = t.to_string();
        }
        let target_words: Vec<String> = crate::lexer::split_file_words(&targets_text)
            .iter()
            .map(|w| strip_dot_slash(&self.tilde(host, w)).to_string())
            .collect();
        if target_words.is_empty() {
            return Ok(RuleLine::NoTargets);
        }

        // A target-specific variable?
        if let Some(a) = parse_var_assignment(&rest, true) {
            let owned;
            let mut a = a;
            if let Some(c) = &cmd {
                owned = format!("{};{}", a.value, collapse_continuations(c));
                a.value = &owned;
            }
            self.target_assign(host, loc, &target_words, &a)?;
            return Ok(RuleLine::TargetVar);
        }

        // A normal rule: expand the rest.
        let mut deps = String::new();
        self.expand_into(host, &rest, &ctx, &mut deps)?;
        if cmd.is_none() {
            if let Some(si) = find_unquoted(&mut deps, b";", false) {
                cmd = Some(deps[si + 1..].to_string());
                deps.truncate(si);
            }
        }
        let mut static_pattern = None;
        if let Some(ci) = find_unquoted(&mut deps, b":", false) {
            let pat_text = deps[..ci].to_string();
            let mut pats = words(&pat_text);
            let pat = pats.next().map(str::to_string);
            if pats.next().is_some() {
                return Err(Error::new(
                    Some(loc.clone()),
                    ErrorKind::MultipleTargetPatterns,
                ));
            }
            let Some(pat) = pat else {
                return Err(Error::new(
                    Some(loc.clone()),
                    ErrorKind::Other("missing target pattern".into()),
                ));
            };
            if find_percent(&pat).1.is_none() {
                return Err(Error::new(
                    Some(loc.clone()),
                    ErrorKind::TargetPatternNoPercent,
                ));
            }
            static_pattern = Some(pat);
            deps = deps[ci + 1..].to_string();
        }

        let pattern_targets = target_words
            .iter()
            .filter(|t| find_percent(t).1.is_some())
            .count();
        if static_pattern.is_some() && pattern_targets > 0 {
            return Err(Error::new(Some(loc.clone()), ErrorKind::MixedStaticRules));
        }
        let mut target_words = target_words;
        let mut is_pattern = pattern_targets > 0;
        if is_pattern && pattern_targets != target_words.len() {
            // make 4.3: a rule whose first target is a pattern must have only patterns.
            if target_words.first().is_some_and(|t| find_percent(t).1.is_some()) {
                return Err(Error::new(Some(loc.clone()), ErrorKind::MixedRules));
            }
            // A normal first target: make complains and keeps the ordinary targets.
            host.stderr(&format!(
                "{loc}: *** mixed implicit and normal rules: deprecated syntax\n"
            ));
            target_words.retain(|t| find_percent(t).1.is_none());
            is_pattern = false;
        }
        let mut targets = Vec::with_capacity(target_words.len());
        for t in target_words {
            // An explicit target's `\%` is a plain percent sign (make resolves it with find_percent).
            let t = if !is_pattern && t.contains('%') {
                find_percent(&t).0
            } else {
                t
            };
            if !is_pattern && has_glob(&t) {
                let m = crate::glob::glob(host, &t);
                if !m.is_empty() {
                    targets.extend(m);
                    continue;
                }
            }
            targets.push(t);
        }
        let recipe = cmd.map(|c| Recipe {
            loc: loc.clone(),
            lines: vec![RecipeLine {
                loc: loc.clone(),
                text: collapse_in_references(&strip_continuation_prefix(&c, self.recipe_prefix())),
            }],
        });
        Ok(RuleLine::Rule(PendingRule {
            loc: loc.clone(),
            targets,
            pattern: is_pattern,
            static_pattern,
            prereq_text: deps.trim_start_matches(ws).to_string(),
            double_colon,
            grouped,
            recipe,
            second_expansion: self.special.second_expansion,
        }))
    }

    /// The recipe prefix character (`.RECIPEPREFIX`, default TAB).
    pub(crate) fn recipe_prefix(&self) -> char {
        self.globals
            .get(".RECIPEPREFIX")
            .and_then(|v| v.value.chars().next())
            .unwrap_or('\t')
    }

    /// Prerequisite words with globs expanded (when not deferred to second expansion).
    fn prereq_list(
        &mut self,
        host: &mut dyn Host,
        text: &str,
        glob: bool,
    ) -> (Vec<String>, Vec<String>) {
        let (n, o) = super::split_prereqs(text);
        if !glob {
            return (n, o);
        }
        let n: Vec<String> = n
            .into_iter()
            .map(|w| self.tilde(host, &w).into_owned())
            .collect();
        let o: Vec<String> = o
            .into_iter()
            .map(|w| self.tilde(host, &w).into_owned())
            .collect();
        let mut g = |v: Vec<String>| -> Vec<String> {
            let mut out = Vec::with_capacity(v.len());
            for w in v {
                if has_glob(&w) {
                    let m = crate::glob::glob(host, &w);
                    if !m.is_empty() {
                        out.extend(m);
                        continue;
                    }
                }
                out.push(w);
            }
            out
        };
        (g(n), g(o))
    }

    /// Record a finished rule (make's `record_files`).
    pub(crate) fn record_rule(
        &mut self,
        host: &mut dyn Host,
        mut r: PendingRule,
        set_default: bool,
    ) -> Result<(), Error> {
        // After loading, rules come only from $(eval) in recipes: make refuses prerequisites there.
        if !self.state.loading && !r.prereq_text.trim().is_empty() {
            return Err(Error::new(Some(r.loc.clone()), ErrorKind::PrereqsInRecipe));
        }
        if !r.pattern && r.targets.len() > 1 {
            let mut seen = crate::vars::FxHashSet::default();
            let mut dups = Vec::new();
            r.targets.retain(|t| {
                let fresh = seen.insert(t.clone());
                if !fresh {
                    dups.push(t.clone());
                }
                fresh
            });
            for t in dups {
                host.stderr(&format!(
                    "{}: target '{t}' given more than once in the same rule\n",
                    r.loc
                ));
            }
        }
        let recipe = r.recipe.take().map(Arc::new);
        if r.pattern {
            let (prereqs, order_only) = self.prereq_list(host, &r.prereq_text, false);
            let pr = PatternRule {
                loc: r.loc.clone(),
                targets: r.targets.clone(),
                prereqs,
                order_only,
                prereq_text: r.prereq_text.clone(),
                recipe,
                terminal: r.double_colon,
                builtin: false,
                from_suffix: false,
                second_expansion: r.second_expansion,
            };
            self.add_pattern_rule(pr, true);
            return Ok(());
        }
        if r.grouped && recipe.is_none() {
            return Err(Error::new(Some(r.loc.clone()), ErrorKind::GroupedNoRecipe));
        }
        let glob = !r.second_expansion;
        if let Some(pat) = &r.static_pattern {
            let pat = pat.clone();
            for t in &r.targets {
                let stem = pattern::stem_of(&pat, t).map(str::to_string);
                let (prereqs, order_only) = match &stem {
                    Some(stem) => {
                        let mut text = String::new();
                        let mut first = true;
                        for w in words(&r.prereq_text) {
                            if !first {
                                text.push(' ');
                            }
                            first = false;
                            if w == "|" {
                                text.push('|');
                            } else {
                                text.push_str(&pattern::substitute(w, stem));
                            }
                        }
                        self.prereq_list(host, &text, glob)
                    }
                    None => {
                        host.stderr(&format!(
                            "{}: target '{}' doesn't match the target pattern\n",
                            r.loc, t
                        ));
                        (Vec::new(), Vec::new())
                    }
                };
                let rule = Rule {
                    loc: r.loc.clone(),
                    targets: vec![t.clone()],
                    prereqs,
                    order_only,
                    prereq_text: r.prereq_text.clone(),
                    static_pattern: Some(pat.clone()),
                    stem,
                    recipe: recipe.clone(),
                    double_colon: r.double_colon,
                    grouped: false,
                    second_expansion: r.second_expansion,
                };
                self.add_rule(host, rule, set_default)?;
            }
            return Ok(());
        }
        let (prereqs, order_only) = self.prereq_list(host, &r.prereq_text, glob);
        if r.grouped || r.targets.len() == 1 {
            let rule = Rule {
                loc: r.loc.clone(),
                targets: r.targets.clone(),
                prereqs,
                order_only,
                prereq_text: r.prereq_text,
                static_pattern: None,
                stem: None,
                recipe,
                double_colon: r.double_colon,
                grouped: r.grouped,
                second_expansion: r.second_expansion,
            };
            return self.add_rule(host, rule, set_default);
        }
        for t in &r.targets {
            let rule = Rule {
                loc: r.loc.clone(),
                targets: vec![t.clone()],
                prereqs: prereqs.clone(),
                order_only: order_only.clone(),
                prereq_text: r.prereq_text.clone(),
                static_pattern: None,
                stem: None,
                recipe: recipe.clone(),
                double_colon: r.double_colon,
                grouped: false,
                second_expansion: r.second_expansion,
            };
            self.add_rule(host, rule, set_default)?;
        }
        Ok(())
    }

    /// Insert a pattern rule with make's replacement rules (identical targets and prerequisites).
    pub(crate) fn add_pattern_rule(&mut self, pr: PatternRule, override_: bool) -> bool {
        let same = self
            .pattern_rules
            .iter()
            .position(|o| o.targets == pr.targets && o.prereqs == pr.prereqs);
        match same {
            Some(i) if override_ => {
                self.pattern_rules.remove(i);
                self.pattern_rules.push(pr);
                true
            }
            Some(_) => false,
            None => {
                self.pattern_rules.push(pr);
                true
            }
        }
    }

    fn add_rule(
        &mut self,
        host: &mut dyn Host,
        rule: Rule,
        set_default: bool,
    ) -> Result<(), Error> {
        let idx = self.rules.len();
        for t in &rule.targets {
            if let Some(prev) = self.by_target.get(t.as_str()) {
                // Every rule of a target has the same kind of colon (checked as each is added).
                let both = prev
                    .first()
                    .is_some_and(|&p| self.rules[p].double_colon != rule.double_colon);
                if both {
                    return Err(Error::new(
                        Some(rule.loc.clone()),
                        ErrorKind::BothColons(t.clone()),
                    ));
                }
                if !rule.double_colon {
                    if let Some(new_recipe) = &rule.recipe {
                        let old = prev.iter().rev().find_map(|&p| {
                            self.rules[p]
                                .recipe
                                .clone()
                                .filter(|_| !self.state.builtin_suffix_rules.contains(&p))
                        });
                        if let Some(old) = old {
                            if !Arc::ptr_eq(&old, new_recipe) {
                                host.stderr(&format!(
                                    "{}: warning: overriding recipe for target '{}'\n",
                                    new_recipe.loc, t
                                ));
                                host.stderr(&format!(
                                    "{}: warning: ignoring old recipe for target '{}'\n",
                                    old.loc, t
                                ));
                            }
                        }
                    }
                }
            }
            self.by_target.entry(t.clone()).or_default().push(idx);
        }
        self.apply_specials(&rule, idx);
        if set_default
            && self
                .globals
                .get(".DEFAULT_GOAL")
                .is_none_or(|v| v.value.is_empty())
        {
            for t in &rule.targets {
                if t.starts_with('.') && !t.contains('/') {
                    continue;
                }
                let mut v = crate::vars::Variable::new(
                    t.as_str(),
                    crate::vars::Flavor::Simple,
                    crate::vars::Origin::File,
                );
                if let Some(old) = self.globals.get(".DEFAULT_GOAL") {
                    v.export = old.export;
                }
                self.globals.insert(".DEFAULT_GOAL".into(), v);
                break;
            }
        }
        self.rules.push(rule);
        Ok(())
    }
}
