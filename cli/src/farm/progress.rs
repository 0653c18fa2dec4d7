//! The live progress line of a farm build on a terminal: `done / running / queued / local`,
//! drawn on stdout only while nothing else prints, cleared before any output, never drawn when
//! stdout is not a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

#[derive(Default)]
struct Counts {
    done: u64,
    running: u64,
    queued: u64,
    local: u64,
    /// The line is on the screen.
    shown: bool,
}

static STATE: Mutex<Option<Counts>> = Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut Counts) -> R) -> Option<R> {
    let mut g = STATE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    g.as_mut().map(f)
}

/// Turns the line on when stdout is a terminal (and `RMAKE_PROGRESS` is not `0`).
pub fn enable() {
    let off = std::env::var("RMAKE_PROGRESS").is_ok_and(|v| v == "0");
    if std::io::stdout().is_terminal() && !off {
        let mut g = STATE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.get_or_insert_with(Counts::default);
    }
}

fn erase(c: &mut Counts) {
    if c.shown {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(b"\r\x1b[K");
        let _ = out.flush();
        c.shown = false;
    }
}

/// Erases the line if it is shown; call before printing anything to the terminal.
pub fn clear() {
    with(erase);
}

/// Runs `f`, which prints, with the line erased first and drawn again afterwards, so nothing
/// else can draw it in between.
pub fn printing<R>(f: impl FnOnce() -> R) -> R {
    let mut g = STATE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(c) = g.as_mut() {
        erase(c);
    }
    let r = f();
    if let Some(c) = g.as_mut() {
        draw(c);
    }
    r
}

fn draw(c: &mut Counts) {
    // A local recipe may print at any moment: no line while one runs.
    if c.local > 0 {
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ = write!(
        out,
        "\r\x1b[K[rmake] {} done, {} running, {} queued, {} local",
        c.done, c.running, c.queued, c.local
    );
    let _ = out.flush();
    c.shown = true;
}

/// What happened to a job.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// Submitted to the farm.
    Queued,
    /// A worker started it.
    Started,
    /// A remote job ended (`was_running`: it had started on a worker).
    RemoteDone {
        /// It had been counted as running rather than queued.
        was_running: bool,
    },
    /// A local job starts.
    LocalStart,
    /// A local job ended.
    LocalDone,
}

/// Counts a step and redraws.
pub fn step(s: Step) {
    with(|c| {
        match s {
            Step::Queued => c.queued += 1,
            Step::Started => {
                c.queued = c.queued.saturating_sub(1);
                c.running += 1;
            }
            Step::RemoteDone { was_running } => {
                if was_running {
                    c.running = c.running.saturating_sub(1);
                } else {
                    c.queued = c.queued.saturating_sub(1);
                }
                c.done += 1;
            }
            Step::LocalStart => {
                erase(c);
                c.local += 1;
            }
            Step::LocalDone => {
                c.local = c.local.saturating_sub(1);
                c.done += 1;
            }
        }
        draw(c);
    });
}

/// Erases the line for good at the end of the build.
pub fn finish() {
    clear();
    let mut g = STATE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    *g = None;
}
