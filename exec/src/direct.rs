//! make's shell-less fast path: when a recipe line may run without `sh -c`, and its argument words
//! (make 4.3 `construct_command_argv_internal`, Unix part).

/// Characters that need the shell when they appear outside single quotes.
const SH_CHARS: &str = "#;\"*?[]&|<>(){}$`^~!";

/// Shell builtins and keywords make never runs without a shell.
const SH_CMDS: &[&str] = &[
    ".", ":", "alias", "bg", "break", "case", "cd", "command", "continue", "eval", "exec", "exit",
    "export", "fc", "fg", "for", "getopts", "hash", "if", "jobs", "login", "logout", "read",
    "readonly", "return", "set", "shift", "test", "trap", "type", "ulimit", "umask", "unalias",
    "unset", "wait", "while",
];

/// The argument words of `command` when make would exec it directly, `None` when it needs the shell.
///
/// Outside quotes a shell special character, a newline, or `=` in the first word needs the shell; a
/// backslash takes the next character literally and backslash-newline is dropped. Inside single
/// quotes everything is literal (backslash-newline kept). An unterminated quote, an empty line or a
/// shell builtin as the program needs the shell too.
pub fn direct_argv(command: &str) -> Option<Vec<String>> {
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    // The current word holds a quoted (possibly empty) part, so it counts even when empty.
    let mut quoted = false;
    let mut in_quote = false;
    let mut chars = command.trim_start_matches([' ', '\t']).chars().peekable();
    while let Some(c) = chars.next() {
        if in_quote {
            if c == '\'' {
                in_quote = false;
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '\'' => {
                in_quote = true;
                quoted = true;
            }
            '\n' => return None,
            '=' if words.is_empty() => return None,
            '\\' => match chars.next() {
                // Backslash-newline is dropped: `d\<newline>e` is the word `de`.
                Some('\n') => {}
                Some(n) => cur.push(n),
                // A trailing backslash is dropped, as make does.
                None => {}
            },
            ' ' | '\t' => {
                end_word(&mut words, &mut cur, &mut quoted)?;
                while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
            }
            c if SH_CHARS.contains(c) => return None,
            c => cur.push(c),
        }
    }
    if in_quote {
        return None;
    }
    if !cur.is_empty() || quoted {
        words.push(cur);
    }
    let first = words.first()?;
    if SH_CMDS.contains(&first.as_str()) {
        return None;
    }
    Some(words)
}

/// Ends the word being built (if it has any text or quotes); `None` when the program word is a builtin.
fn end_word(words: &mut Vec<String>, cur: &mut String, quoted: &mut bool) -> Option<()> {
    if cur.is_empty() && !*quoted {
        return Some(());
    }
    words.push(std::mem::take(cur));
    *quoted = false;
    if words.len() == 1 && SH_CMDS.contains(&words[0].as_str()) {
        return None;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::direct_argv;

    fn w(s: &str) -> Option<Vec<String>> {
        direct_argv(s)
    }

    fn v(words: &[&str]) -> Option<Vec<String>> {
        Some(words.iter().map(|x| x.to_string()).collect())
    }

    #[test]
    fn plain_and_quoted_words() {
        assert_eq!(w("echo a  b"), v(&["echo", "a", "b"]));
        assert_eq!(w("echo '[a\\\\][b\\ ]'"), v(&["echo", "[a\\\\][b\\ ]"]));
        assert_eq!(w("x 'a;b' a'b c'd"), v(&["x", "a;b", "ab cd"]));
        assert_eq!(w("x '' y"), v(&["x", "", "y"]));
        assert_eq!(w("x ''"), v(&["x", ""]));
        assert_eq!(w("x a\\\\b a\\;b a\\ b"), v(&["x", "a\\b", "a;b", "a b"]));
        assert_eq!(w("x a=b"), v(&["x", "a=b"]));
        assert_eq!(w("'A=b' x"), v(&["A=b", "x"]));
        assert_eq!(w("x a \\\n  b"), v(&["x", "a", "b"]));
        assert_eq!(w("x d\\\ne d\\\n\te"), v(&["x", "de", "d", "e"]));
        assert_eq!(w("x 'a \\\nb'"), v(&["x", "a \\\nb"]));
    }

    #[test]
    fn shell_needed() {
        for s in [
            "x \"a\"",
            "x a$b",
            "x ~",
            "x ^",
            "A=b x",
            "x a\\\\;b",
            "x 'open",
            "cd x",
            "'cd' x",
            ":",
            "x\ny",
            "",
        ] {
            assert_eq!(direct_argv(s), None, "{s:?}");
        }
    }
}
