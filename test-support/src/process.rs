//! Processes and waiting: whether a pid runs, a node-host's pid, stopping a child, and
//! bounded waits.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::Scheduler;

/// Whether process `pid` runs (a zombie, exited but not reaped, does not).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// Waits until `cond` holds; fails after a generous bound. This bounds a wait, it does
/// not assert a timing.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The pid of a tenant's node-host, from its pid file.
pub fn node_pid(s: &Scheduler, node_id_hex: &str) -> Option<u32> {
    std::fs::read_to_string(s.node_dir(node_id_hex).pid())
        .ok()
        .and_then(|p| p.trim().parse().ok())
}

/// Stops `child` (`what`, for the error) with SIGTERM and waits for it; an error unless it
/// exits cleanly.
pub(crate) fn terminate(mut child: Child, what: &str) -> Result<()> {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    if !status.success() {
        bail!("kill -TERM {what} failed");
    }
    let exit = child.wait()?;
    if !exit.success() {
        bail!("{what} exited with {exit} on SIGTERM");
    }
    Ok(())
}
