//! Splitting makefile text into logical lines (physical lines joined by backslash-newline) with their
//! starting line numbers, and make's text transformations on them (continuation collapsing, comments).

/// One logical line: the raw text (backslash-newlines kept) and where it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogicalLine<'t> {
    /// The raw text without the final newline.
    pub text: &'t str,
    /// The 1-based line it starts on.
    pub line: u32,
}

/// An iterator over the logical lines of a text.
#[derive(Clone, Debug)]
pub struct Lexer<'t> {
    text: &'t str,
    pos: usize,
    line: u32,
}

impl<'t> Lexer<'t> {
    /// Lines of `text`, the first numbered `first_line`.
    pub fn new(text: &'t str, first_line: u32) -> Lexer<'t> {
        Lexer {
            text,
            pos: 0,
            line: first_line,
        }
    }

    /// The number the next line will have.
    pub fn line(&self) -> u32 {
        self.line
    }
}

/// Whether the text ends in an odd number of backslashes.
fn odd_backslashes(s: &[u8]) -> bool {
    s.iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

impl<'t> Iterator for Lexer<'t> {
    type Item = LogicalLine<'t>;

    fn next(&mut self) -> Option<LogicalLine<'t>> {
        if self.pos >= self.text.len() {
            return None;
        }
        let b = self.text.as_bytes();
        let start = self.pos;
        let first = self.line;
        let mut end;
        loop {
            match self.text[self.pos..].find('\n') {
                Some(rel) => {
                    end = self.pos + rel;
                    self.pos = end + 1;
                    self.line += 1;
                    let mut seg_end = end;
                    if seg_end > start && b[seg_end - 1] == b'\r' {
                        seg_end -= 1;
                    }
                    if odd_backslashes(&b[start..seg_end]) && self.pos < self.text.len() {
                        continue;
                    }
                    break;
                }
                None => {
                    end = self.text.len();
                    self.pos = end;
                    self.line += 1;
                    break;
                }
            }
        }
        let mut text = &self.text[start..end];
        if let Some(t) = text.strip_suffix('\r') {
            text = t;
        }
        Some(LogicalLine { text, line: first })
    }
}

/// make's `collapse_continuations` for non-recipe lines: each backslash-newline, the whitespace before
/// it and the leading whitespace of the next line become one space; backslashes before the newline are
/// halved.
pub fn collapse_continuations(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains('\n') {
        return std::borrow::Cow::Borrowed(line);
    }
    let b = line.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let Some(rel) = b[i..].iter().position(|&c| c == b'\n') else {
            out.extend_from_slice(&b[i..]);
            break;
        };
        let q = i + rel;
        let mut n = 0usize;
        while q > i + n && b[q - n - 1] == b'\\' {
            n += 1;
        }
        // make: i = -n; keep (p - in) + i - i/2 bytes (C division truncates toward zero).
        let neg = -(n as i64);
        let keep = (q - i) as i64 + neg - neg / 2;
        let keep = keep.max(0) as usize;
        out.extend_from_slice(&b[i..i + keep]);
        i = q + 1;
        if n % 2 == 1 {
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            while out.last().is_some_and(|&c| c == b' ' || c == b'\t') {
                out.pop();
            }
            out.push(b' ');
        } else {
            out.push(b'\n');
        }
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// The index just past the `$(...)`/`${...}` reference whose `$` is at `i` (only the same kind of
/// parenthesis nests, as make's scanning counts them); `b.len()` when it is not closed.
pub(crate) fn skip_reference(b: &[u8], i: usize) -> usize {
    let Some(&open) = b.get(i + 1) else {
        return b.len();
    };
    let close = if open == b'(' { b')' } else { b'}' };
    let mut count = 0usize;
    for (j, &c) in b.iter().enumerate().skip(i + 2) {
        if c == open {
            count += 1;
        } else if c == close {
            if count == 0 {
                return j + 1;
            }
            count -= 1;
        }
    }
    b.len()
}

/// make's `find_char_unquote`: the first `stop` character not quoted by a backslash, halving the
/// backslashes that precede each candidate (in place). With `skip_refs`, `$(...)`/`${...}` contents are
/// skipped. Returns the byte index.
pub fn find_unquoted(s: &mut String, stops: &[u8], skip_refs: bool) -> Option<usize> {
    let mut i = 0;
    loop {
        let b = s.as_bytes();
        if i >= b.len() {
            return None;
        }
        let c = b[i];
        if skip_refs && c == b'$' && i + 1 < b.len() && (b[i + 1] == b'(' || b[i + 1] == b'{') {
            i = skip_reference(b, i);
            continue;
        }
        if skip_refs && c == b'$' {
            i += 2;
            continue;
        }
        if stops.contains(&c) {
            let mut n = 0;
            while n < i && b[i - n - 1] == b'\\' {
                n += 1;
            }
            if n > 0 {
                // Swallow half of the backslashes.
                let remove = n.div_ceil(2);
                let keep_from = i - n;
                s.replace_range(keep_from..keep_from + remove, "");
                i -= remove;
            }
            if n % 2 == 0 {
                return Some(i);
            }
            i += 1;
            continue;
        }
        i += 1;
    }
}

/// make's `remove_comments`: cut at the first unquoted `#` outside variable references and function
/// calls (resolving `\#`).
pub fn remove_comments(s: &mut String) {
    if !s.contains('#') {
        return;
    }
    if let Some(i) = find_unquoted(s, b"#", true) {
        s.truncate(i);
    }
}

/// Split a list of file names as make does (`parse_file_seq`): at blanks not escaped by a backslash;
/// `a\ b` is the one name `a b`.
pub fn split_file_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    if !text.contains('\\') {
        out.extend(crate::pattern::words(text).map(str::to_string));
        return out;
    }
    let b = text.as_bytes();
    let mut cur: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if crate::pattern::is_space(c) {
            let n = cur.iter().rev().take_while(|&&x| x == b'\\').count();
            if n % 2 == 1 {
                // The blank is quoted: keep half of the backslashes and the blank.
                let keep = cur.len() - n + n / 2;
                cur.truncate(keep);
                cur.push(c);
                i += 1;
                continue;
            }
            // Backslashes that quote each other before a real separator are halved too.
            cur.truncate(cur.len() - n / 2);
            if !cur.is_empty() {
                out.push(String::from_utf8_lossy(&cur).into_owned());
                cur.clear();
            }
            i += 1;
            continue;
        }
        cur.push(c);
        i += 1;
    }
    if !cur.is_empty() {
        out.push(String::from_utf8_lossy(&cur).into_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_lines_and_numbers() {
        let t = "a = 1\nb = 2 \\\n  3\n\n\tx\\\\\ny";
        let v: Vec<_> = Lexer::new(t, 1).map(|l| (l.text, l.line)).collect();
        assert_eq!(
            v,
            vec![
                ("a = 1", 1),
                ("b = 2 \\\n  3", 2),
                ("", 4),
                ("\tx\\\\", 5),
                ("y", 6)
            ]
        );
    }

    #[test]
    fn collapse() {
        assert_eq!(collapse_continuations("a  \\\n   b"), "a b");
        assert_eq!(collapse_continuations("a\\\n\\\nb"), "a b");
        assert_eq!(collapse_continuations("a\\\\\nb"), "a\\\nb");
    }

    #[test]
    fn file_words() {
        assert_eq!(split_file_words("a\\ b  c"), vec!["a b", "c"]);
        assert_eq!(split_file_words("x\\\\ y"), vec!["x\\", "y"]);
        assert_eq!(split_file_words(" p q "), vec!["p", "q"]);
    }

    #[test]
    fn comments_skip_references() {
        let mut s = String::from("W := $(words a # b) # c");
        remove_comments(&mut s);
        assert_eq!(s, "W := $(words a # b) ");
    }

    #[test]
    fn comments() {
        let mut s = String::from("a \\# b # c");
        remove_comments(&mut s);
        assert_eq!(s, "a # b ");
        let mut s = String::from("a \\\\# b");
        remove_comments(&mut s);
        assert_eq!(s, "a \\");
    }
}
