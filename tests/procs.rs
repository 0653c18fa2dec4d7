//! Processes by pid: signals (through `kill(1)`, so no unsafe code), the process tree read from
//! `/proc`, and waiting for a process to appear or go away.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Sends `signal` (a name such as `INT`, `KILL`, `TERM`) to `pid`, or to the process group
/// `pid` when `group` is set.
pub fn signal(pid: u32, signal: &str, group: bool) -> Result<()> {
    let target = if group {
        format!("-{pid}")
    } else {
        pid.to_string()
    };
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(&target)
        .stderr(Stdio::null())
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -{signal} {target} failed ({status})");
    }
    Ok(())
}

/// One process as `/proc` shows it.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    /// Its pid.
    pub pid: u32,
    /// Its parent's pid.
    pub ppid: u32,
    /// Its arguments, joined by spaces.
    pub cmdline: String,
}

/// Every live process (zombies excluded).
pub fn all() -> Vec<ProcInfo> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        let ppid = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        if state == "Z" || state == "X" {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                b.split(|c| *c == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        out.push(ProcInfo { pid, ppid, cmdline });
    }
    out
}

/// The live descendants of `root` (children, grandchildren, ...).
pub fn descendants(root: u32) -> Vec<ProcInfo> {
    descendants_in(&all(), root)
}

/// The descendants of `root` among `procs` (one reading of [`all`]).
pub fn descendants_in(procs: &[ProcInfo], root: u32) -> Vec<ProcInfo> {
    let mut children: HashMap<u32, Vec<&ProcInfo>> = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        for c in children.get(&pid).into_iter().flatten() {
            out.push((*c).clone());
            stack.push(c.pid);
        }
    }
    out
}

/// Whether a live process's command line is exactly `cmdline`.
pub fn exists_with_cmdline(cmdline: &str) -> bool {
    all().iter().any(|p| p.cmdline == cmdline)
}

/// Polls `cond` every 20 ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
