//! Node-host processes by pid: alive, stop, and the pid files that let a restarted
//! scheduler find node-hosts its predecessor left running.

use std::path::Path;
use std::time::{Duration, Instant};

/// Whether a process with `pid` exists.
pub fn alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists and may be signalled.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// Whether `pid` is a node-host serving `dir` (guards against a recycled pid).
pub fn is_node_host_for(pid: u32, dir: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let dir = dir.display().to_string();
    args.first().is_some_and(|a| a.ends_with("node-host")) && args.contains(&dir)
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: sending a signal to a pid we checked belongs to a node-host we manage.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Asks `pid` to stop (SIGTERM), waits up to `grace`, then kills it (SIGKILL).
pub async fn terminate(pid: u32, grace: Duration) {
    signal(pid, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while alive(pid) && !is_zombie(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if alive(pid) && !is_zombie(pid) {
        tracing::warn!(pid, "node-host did not stop in time; killing it");
        signal(pid, libc::SIGKILL);
    }
}

/// A zombie has exited and only waits to be reaped by its parent.
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Stops node-hosts a previous scheduler left behind (it was killed, say): every node
/// directory under `nodes_dir` whose pid file names a live node-host for that directory.
pub async fn reap_orphans(nodes_dir: &Path, grace: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(nodes_dir) else {
        return 0;
    };
    let mut reaped = 0;
    for entry in entries.flatten() {
        let dir = entry.path();
        let pid_path = skylight_node_host::paths::NodeDir::new(&dir).pid();
        let Some(pid) = std::fs::read_to_string(&pid_path)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        else {
            continue;
        };
        if alive(pid) && is_node_host_for(pid, &dir) {
            tracing::info!(pid, dir = %dir.display(), "stopping a node-host left by a previous scheduler");
            terminate(pid, grace).await;
            reaped += 1;
        }
        let _ = std::fs::remove_file(&pid_path);
    }
    reaped
}
