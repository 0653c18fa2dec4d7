//! File-name functions: dir, notdir, suffix, basename, abspath, realpath.

use super::text::push_word;
use crate::host::{normalize, Host};
use crate::pattern::words;

/// `$(dir names)`.
pub(crate) fn dir(text: &str, out: &mut String) {
    let mut first = true;
    for w in words(text) {
        match w.rfind('/') {
            Some(i) => push_word(out, &mut first, &w[..=i]),
            None => push_word(out, &mut first, "./"),
        }
    }
}

/// `$(notdir names)`.
pub(crate) fn notdir(text: &str, out: &mut String) {
    let mut first = true;
    for w in words(text) {
        match w.rfind('/') {
            Some(i) => push_word(out, &mut first, &w[i + 1..]),
            None => push_word(out, &mut first, w),
        }
    }
}

fn suffix_start(w: &str) -> Option<usize> {
    let dot = w.rfind('.')?;
    match w.rfind('/') {
        Some(slash) if slash > dot => None,
        _ => Some(dot),
    }
}

/// `$(suffix names)`.
pub(crate) fn suffix(text: &str, out: &mut String) {
    let mut first = true;
    for w in words(text) {
        if let Some(i) = suffix_start(w) {
            push_word(out, &mut first, &w[i..]);
        }
    }
}

/// `$(basename names)`.
pub(crate) fn basename(text: &str, out: &mut String) {
    let mut first = true;
    for w in words(text) {
        match suffix_start(w) {
            Some(i) => push_word(out, &mut first, &w[..i]),
            None => push_word(out, &mut first, w),
        }
    }
}

/// `$(abspath names)`.
pub(crate) fn abspath(cwd: &str, text: &str, out: &mut String) {
    let mut first = true;
    for w in words(text) {
        push_word(out, &mut first, &normalize(cwd, w));
    }
}

/// `$(realpath names)`: only names that exist.
pub(crate) fn realpath(host: &mut dyn Host, text: &str, out: &mut String) {
    let mut first = true;
    for w in words(text) {
        if let Some(r) = host.realpath(w) {
            push_word(out, &mut first, &r);
        }
    }
}
