//! make's "Entering directory" line, printed lazily: make 4.3 prints it just before its first
//! own output (a message, an echoed command, `$(info)`) or its first started command, so a
//! sub-make that prints nothing and runs nothing (`-q`, a lone `:` recipe) prints no lines.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Set while an Entering line waits to be printed.
static ARMED: AtomicBool = AtomicBool::new(false);
/// The Entering line waiting, and whether one was printed.
static STATE: Mutex<(Option<String>, bool)> = Mutex::new((None, false));

/// Holds `line` back until the first output (see [`ensure`]).
pub fn defer(line: String) {
    if let Ok(mut st) = STATE.lock() {
        st.0 = Some(line);
        ARMED.store(true, Ordering::SeqCst);
    }
}

/// Prints the waiting Entering line, once.
pub fn ensure() {
    if !ARMED.load(Ordering::SeqCst) {
        return;
    }
    if let Ok(mut st) = STATE.lock() {
        if let Some(line) = st.0.take() {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
            st.1 = true;
        }
        ARMED.store(false, Ordering::SeqCst);
    }
}

/// Whether the Entering line was printed (so the Leaving line is due).
pub fn entered() -> bool {
    STATE.lock().map(|st| st.1).unwrap_or(false)
}

/// Whether starting `command` makes make print: a lone `:` starts no process in make.
pub fn starts_process(command: &str) -> bool {
    command.trim_start() != ":"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lone_colon_starts_no_process() {
        assert!(!starts_process(":"));
        assert!(!starts_process("  :"));
        assert!(starts_process(": "));
        assert!(starts_process(": hi"));
        assert!(starts_process("true"));
    }
}
