//! The text of recipe lines as make keeps it: the recipe prefix of continuation lines removed and
//! backslash-newlines inside references collapsed.

/// make's `new_job` treatment of a backslash-newline inside a variable reference or function call
/// in a recipe line: it and the blanks around it become one space (outside references it stays, for
/// the shell).
pub(crate) fn collapse_in_references(text: &str) -> String {
    if !text.contains("\\\n") {
        return text.to_string();
    }
    let b = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'$' && i + 1 < b.len() {
            if b[i + 1] == b'(' || b[i + 1] == b'{' {
                depth += 1;
            }
            out.push(c);
            out.push(b[i + 1]);
            i += 2;
            continue;
        }
        match c {
            b'(' | b'{' if depth > 0 => depth += 1,
            b')' | b'}' if depth > 0 => depth -= 1,
            b'\\' if depth > 0 && i + 1 < b.len() && b[i + 1] == b'\n' => {
                while out.last().is_some_and(|&x| x == b' ' || x == b'\t') {
                    out.pop();
                }
                out.push(b' ');
                i += 2;
                while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Remove the recipe prefix that begins each continuation line of a recipe line, as make does.
pub(crate) fn strip_continuation_prefix(text: &str, prefix: char) -> String {
    if !text.contains('\n') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut lines = text.split('\n');
    if let Some(f) = lines.next() {
        out.push_str(f);
    }
    for l in lines {
        out.push('\n');
        out.push_str(l.strip_prefix(prefix).unwrap_or(l));
    }
    out
}
