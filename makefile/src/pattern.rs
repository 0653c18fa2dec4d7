//! `%` patterns as make uses them (patsubst, filter, static pattern rules, pattern-specific variables,
//! vpath), including `\%` escapes, and make's whitespace-separated word lists.

/// Make's whitespace (what separates words).
#[inline]
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Whether `c` is make's whitespace.
#[inline]
pub fn is_space_char(c: char) -> bool {
    c.is_ascii() && is_space(c as u8)
}

/// `s` without make's whitespace at either end.
pub fn trim_space(s: &str) -> &str {
    s.trim_matches(is_space_char)
}

/// `s` without make's whitespace at the start.
pub fn trim_space_start(s: &str) -> &str {
    s.trim_start_matches(is_space_char)
}

/// The whitespace-separated words of `text`.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(is_space_char).filter(|w| !w.is_empty())
}

/// A pattern split at its first unescaped `%`, with the escapes of the parts resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    /// Text before `%` (or the whole text when there is no `%`).
    pub prefix: String,
    /// Text after `%`; `None` when the pattern has no `%`.
    pub suffix: Option<String>,
}

/// Resolve backslashes that quote `%` (make's `find_percent`): `\%` is a literal `%`, `\\%` is a
/// literal backslash followed by the real `%`. Returns the unescaped text and the byte offset of the
/// first real `%`.
pub fn find_percent(text: &str) -> (String, Option<usize>) {
    if !text.contains('%') {
        return (text.to_string(), None);
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut start = 0;
    while i < b.len() {
        if b[i] == b'%' {
            // Count the backslashes just before this %.
            let mut j = i;
            while j > start && b[j - 1] == b'\\' {
                j -= 1;
            }
            let n = i - j;
            out.push_str(&text[start..j]);
            for _ in 0..n / 2 {
                out.push('\\');
            }
            if n % 2 == 0 {
                let pos = out.len();
                out.push('%');
                out.push_str(&text[i + 1..]);
                return (out, Some(pos));
            }
            out.push('%');
            start = i + 1;
        }
        i += 1;
    }
    out.push_str(&text[start..]);
    (out, None)
}

impl Pattern {
    /// Parse a pattern (only the first unescaped `%` is special).
    pub fn new(text: &str) -> Pattern {
        let (s, p) = find_percent(text);
        match p {
            Some(p) => Pattern {
                prefix: s[..p].to_string(),
                suffix: Some(s[p + 1..].to_string()),
            },
            None => Pattern {
                prefix: s,
                suffix: None,
            },
        }
    }

    /// The stem if `word` matches (`Some("")` for an exact match of a pattern without `%`).
    pub fn stem<'w>(&self, word: &'w str) -> Option<&'w str> {
        match &self.suffix {
            None => (word == self.prefix).then_some(""),
            Some(suf) => {
                if word.len() >= self.prefix.len() + suf.len()
                    && word.starts_with(&self.prefix)
                    && word.ends_with(suf.as_str())
                {
                    Some(&word[self.prefix.len()..word.len() - suf.len()])
                } else {
                    None
                }
            }
        }
    }

    /// Whether `word` matches.
    pub fn matches(&self, word: &str) -> bool {
        self.stem(word).is_some()
    }
}

/// Whether `word` matches the pattern text `pat` (with a `%`, or exactly).
pub fn matches(pat: &str, word: &str) -> bool {
    Pattern::new(pat).matches(word)
}

/// The stem of `word` under the pattern text `pat`, if it matches.
pub fn stem_of<'w>(pat: &str, word: &'w str) -> Option<&'w str> {
    Pattern::new(pat).stem(word)
}

/// Replace the `%` of `replacement` (its first unescaped one) with `stem`; without `%`, the text itself.
pub fn substitute(replacement: &str, stem: &str) -> String {
    let (s, p) = find_percent(replacement);
    match p {
        Some(p) => {
            let mut out = String::with_capacity(s.len() + stem.len());
            out.push_str(&s[..p]);
            out.push_str(stem);
            out.push_str(&s[p + 1..]);
            out
        }
        None => s,
    }
}

/// `$(patsubst pattern,replacement,text)` over words, joined by single spaces.
pub fn patsubst(pattern: &str, replacement: &str, text: &str, out: &mut String) {
    let pat = Pattern::new(pattern);
    let (rep, rp) = find_percent(replacement);
    let mut first = true;
    for w in words(text) {
        if !first {
            out.push(' ');
        }
        first = false;
        match pat.stem(w) {
            Some(stem) if pat.suffix.is_some() => match rp {
                Some(p) => {
                    out.push_str(&rep[..p]);
                    out.push_str(stem);
                    out.push_str(&rep[p + 1..]);
                }
                None => out.push_str(&rep),
            },
            Some(_) => out.push_str(&rep),
            None => out.push_str(w),
        }
    }
}

/// A substitution reference `$(VAR:from=to)` applied to `text`. With a real `%` in `from` it is
/// `patsubst`; otherwise (make's expand.c) every word ending in `from` (its `\%` escapes resolved)
/// gets that suffix replaced by `to` taken literally.
pub fn subst_ref(from: &str, to: &str, text: &str, out: &mut String) {
    let (suffix, real) = find_percent(from);
    if real.is_some() {
        return patsubst(from, to, text, out);
    }
    let mut first = true;
    for w in words(text) {
        if !first {
            out.push(' ');
        }
        first = false;
        match w.strip_suffix(suffix.as_str()) {
            Some(stem) => {
                out.push_str(stem);
                out.push_str(to);
            }
            None => out.push_str(w),
        }
    }
}

/// `stem` as text that expands to itself (`$` doubled), for substitution before an expansion.
fn literal_stem(stem: &str) -> std::borrow::Cow<'_, str> {
    if stem.contains('$') {
        std::borrow::Cow::Owned(stem.replace('$', "$$"))
    } else {
        std::borrow::Cow::Borrowed(stem)
    }
}

/// Replace every `%` of `text` with `stem` (make's static-pattern prerequisites before second
/// expansion: each `%` becomes `$*`, inside references too).
pub fn subst_every_percent(text: &str, stem: &str) -> String {
    text.replace('%', &literal_stem(stem))
}

/// Replace the first `%` of each word with `stem`, where a word may hold references with blanks
/// (`$(addsuffix .c,%)` is one word): make's pattern-rule prerequisites before second expansion.
pub fn subst_first_percent_per_word(text: &str, stem: &str) -> String {
    let stem = literal_stem(stem);
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len() + stem.len());
    let mut i = 0;
    let mut last = 0;
    let mut replaced = false;
    let mut depth = 0usize;
    while i < b.len() {
        let c = b[i];
        if c == b'$' && i + 1 < b.len() {
            if b[i + 1] == b'(' || b[i + 1] == b'{' {
                depth += 1;
                i += 2;
                continue;
            }
            i += 2;
            continue;
        }
        match c {
            b'(' | b'{' if depth > 0 => depth += 1,
            b')' | b'}' if depth > 0 => depth -= 1,
            b'%' if !replaced => {
                out.push_str(&text[last..i]);
                out.push_str(&stem);
                last = i + 1;
                replaced = true;
            }
            c if depth == 0 && is_space(c) => replaced = false,
            _ => {}
        }
        i += 1;
    }
    out.push_str(&text[last.min(text.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes() {
        assert_eq!(find_percent("a\\%b%c"), ("a%b%c".to_string(), Some(3)));
        assert_eq!(find_percent("a\\\\%c"), ("a\\%c".to_string(), Some(2)));
        assert_eq!(find_percent("abc"), ("abc".to_string(), None));
    }

    #[test]
    fn stems() {
        assert_eq!(stem_of("%.c", "a.c"), Some("a"));
        assert_eq!(stem_of("a%b", "ab"), Some(""));
        assert_eq!(stem_of("a%ab", "ab"), None);
        assert_eq!(stem_of("x", "x"), Some(""));
    }

    #[test]
    fn patsubst_words() {
        let mut o = String::new();
        patsubst("%.c", "%.o", "  a.c  b.h\tc.c ", &mut o);
        assert_eq!(o, "a.o b.h c.o");
    }

    #[test]
    fn second_expansion_substitutions() {
        assert_eq!(
            subst_every_percent("$(subst %,q,%) %.h", "a"),
            "$(subst a,q,a) a.h"
        );
        assert_eq!(
            subst_first_percent_per_word("$(subst %,q,%) %.h x%%", "a"),
            "$(subst a,q,%) a.h xa%"
        );
        assert_eq!(subst_first_percent_per_word("%.c", "d$x"), "d$$x.c");
    }
}
