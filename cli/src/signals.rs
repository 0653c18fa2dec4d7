//! Fatal signals (SIGINT, SIGTERM, SIGHUP, SIGQUIT): recorded by a handler so the executor can
//! stop its children, delete the targets being made and then die of the same signal, like make.

use std::sync::atomic::{AtomicI32, Ordering};

static PENDING: AtomicI32 = AtomicI32::new(0);

/// The pids of running commands, readable from the handler (0: a free slot). make forwards
/// SIGTERM to its children inside the handler; doing it here too means a child still running
/// when the signal arrives gets it at once, however late the executor's loop notices.
static CHILDREN: [AtomicI32; 256] = [const { AtomicI32::new(0) }; 256];

extern "C" fn on_signal(sig: libc::c_int) {
    PENDING.store(sig, Ordering::SeqCst);
    if sig == libc::SIGTERM {
        for slot in &CHILDREN {
            let pid = slot.load(Ordering::SeqCst);
            if pid > 0 {
                #[allow(unsafe_code)]
                // SAFETY: kill(2) is async-signal-safe and has no memory-safety preconditions.
                unsafe {
                    libc::kill(pid, sig);
                }
            }
        }
    }
}

/// Records a running command's pid for the handler (untracked when every slot is taken: the
/// executor's loop still forwards the signal then).
pub fn track(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    for slot in &CHILDREN {
        if slot.compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            return;
        }
    }
}

/// Forgets a command's pid once it has been reaped.
pub fn untrack(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    for slot in &CHILDREN {
        if slot.compare_exchange(pid, 0, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            return;
        }
    }
}

const FATAL: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// Installs the handlers (keeping a signal ignored if it was ignored when we started, as make does).
#[allow(unsafe_code)]
pub fn install() {
    for sig in FATAL {
        // SAFETY: sigaction with a handler that only stores into an atomic, which is
        // async-signal-safe; the struct is zero-initialised and then filled in.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN {
                continue;
            }
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// The fatal signal received, if any.
pub fn pending() -> Option<i32> {
    match PENDING.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Sends `sig` to a child process.
#[allow(unsafe_code)]
pub fn kill(pid: u32, sig: i32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Restores the default action for `sig` and raises it: the process dies of it, as make does.
#[allow(unsafe_code)]
pub fn die_of(sig: i32) -> ! {
    // SAFETY: resetting a handler to SIG_DFL and raising a signal on ourselves.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
    std::process::exit(128 + sig)
}
