//! Text functions: subst, strip, filter, filter-out, sort, word, wordlist, join, addprefix, addsuffix.

use crate::error::{Error, ErrorKind};
use crate::expand::Ctx;
use crate::pattern::{words, Pattern};

/// Push `w` to `out`, preceded by a space unless it is the first word.
pub(crate) fn push_word(out: &mut String, first: &mut bool, w: &str) {
    if !*first {
        out.push(' ');
    }
    *first = false;
    out.push_str(w);
}

/// `$(subst from,to,text)`; an empty `from` appends `to` to the text, as make does.
pub(crate) fn subst(from: &str, to: &str, text: &str, out: &mut String) {
    if from.is_empty() {
        out.push_str(text);
        out.push_str(to);
    } else {
        out.push_str(&text.replace(from, to));
    }
}

/// `$(strip text)`.
pub(crate) fn strip(text: &str, out: &mut String) {
    let mut first = true;
    for w in words(text) {
        push_word(out, &mut first, w);
    }
}

/// `$(filter pats,text)` (`keep`) and `$(filter-out pats,text)`.
pub(crate) fn filter(pats: &str, text: &str, keep: bool, out: &mut String) {
    let pats: Vec<Pattern> = words(pats).map(Pattern::new).collect();
    let mut first = true;
    for w in words(text) {
        if pats.iter().any(|p| p.matches(w)) == keep {
            push_word(out, &mut first, w);
        }
    }
}

/// `$(sort list)`: byte order, duplicates removed.
pub(crate) fn sort(text: &str, out: &mut String) {
    let mut v: Vec<&str> = words(text).collect();
    v.sort_unstable();
    v.dedup();
    let mut first = true;
    for w in v {
        push_word(out, &mut first, w);
    }
}

/// make's `check_numeric`: the stripped text must be all digits.
fn numeric(
    arg: &str,
    which: &'static str,
    func: &'static str,
    ctx: &Ctx<'_, '_>,
) -> Result<i64, Error> {
    let t = crate::pattern::trim_space(arg);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ctx.var_err(ErrorKind::NonNumericArg {
            which,
            func,
            arg: arg.to_string(),
        }));
    }
    Ok(t.parse::<i64>().unwrap_or(i64::MAX))
}

/// `$(word n,text)`.
pub(crate) fn word(n: &str, text: &str, ctx: &Ctx<'_, '_>, out: &mut String) -> Result<(), Error> {
    let i = numeric(n, "first", "word", ctx)?;
    if i == 0 {
        return Err(ctx.var_err(ErrorKind::ZeroIndex("word")));
    }
    if let Some(w) = words(text).nth((i - 1) as usize) {
        out.push_str(w);
    }
    Ok(())
}

/// `$(wordlist s,e,text)`.
pub(crate) fn wordlist(
    s: &str,
    e: &str,
    text: &str,
    ctx: &Ctx<'_, '_>,
    out: &mut String,
) -> Result<(), Error> {
    let start = numeric(s, "first", "wordlist", ctx)?;
    let end = numeric(e, "second", "wordlist", ctx)?;
    if start < 1 {
        return Err(ctx.var_err(ErrorKind::WordlistStart(start)));
    }
    if end < start {
        return Ok(());
    }
    // make copies the text from the first word's start to the last word's end, spacing included.
    let base = text.as_ptr() as usize;
    let mut from = None;
    let mut to = 0;
    for w in words(text)
        .skip((start - 1) as usize)
        .take((end - start + 1) as usize)
    {
        let off = w.as_ptr() as usize - base;
        from.get_or_insert(off);
        to = off + w.len();
    }
    if let Some(f) = from {
        out.push_str(&text[f..to]);
    }
    Ok(())
}

/// `$(join a,b)`: pairwise concatenation.
pub(crate) fn join(a: &str, b: &str, out: &mut String) {
    let mut ia = words(a);
    let mut ib = words(b);
    let mut first = true;
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => break,
            (x, y) => {
                if !first {
                    out.push(' ');
                }
                first = false;
                out.push_str(x.unwrap_or(""));
                out.push_str(y.unwrap_or(""));
            }
        }
    }
}

/// `$(addprefix p,list)` (`prefix`) and `$(addsuffix s,list)`.
pub(crate) fn add_affix(affix: &str, list: &str, prefix: bool, out: &mut String) {
    let mut first = true;
    for w in words(list) {
        if !first {
            out.push(' ');
        }
        first = false;
        if prefix {
            out.push_str(affix);
            out.push_str(w);
        } else {
            out.push_str(w);
            out.push_str(affix);
        }
    }
}
