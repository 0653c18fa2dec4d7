//! `%` patterns as the build half uses them: matching a name (giving the stem) and substituting a stem.

/// The stem of `name` under `pattern` (one `%`), or `None` when it does not match.
/// The stem may be empty here; pattern-rule search requires a non-empty one itself.
pub(crate) fn match_stem<'a>(pattern: &str, name: &'a str) -> Option<&'a str> {
    let pct = pattern.find('%')?;
    let (prefix, suffix) = (&pattern[..pct], &pattern[pct + 1..]);
    if name.len() < prefix.len() + suffix.len()
        || !name.starts_with(prefix)
        || !name.ends_with(suffix)
    {
        return None;
    }
    Some(&name[prefix.len()..name.len() - suffix.len()])
}

/// `pattern` with its first `%` replaced by `stem` (a name without `%` is returned as is).
pub(crate) fn subst(pattern: &str, stem: &str) -> String {
    match pattern.find('%') {
        Some(p) => {
            let mut s = String::with_capacity(pattern.len() + stem.len());
            s.push_str(&pattern[..p]);
            s.push_str(stem);
            s.push_str(&pattern[p + 1..]);
            s
        }
        None => pattern.to_string(),
    }
}

/// The directory part of `name` including the slash (`src/` for `src/a.c`), or "".
pub(crate) fn dir_part(name: &str) -> &str {
    match name.rfind('/') {
        Some(i) => &name[..=i],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems() {
        assert_eq!(match_stem("%.o", "a.o"), Some("a"));
        assert_eq!(match_stem("lib%.a", "libx.a"), Some("x"));
        assert_eq!(match_stem("%.o", "a.c"), None);
        assert_eq!(match_stem("%", "x"), Some("x"));
        assert_eq!(match_stem("a%a", "a"), None);
        assert_eq!(subst("%.c", "dir/a"), "dir/a.c");
        assert_eq!(subst("x.h", "a"), "x.h");
        assert_eq!(dir_part("src/a.c"), "src/");
    }
}
