//! A tenant's backup, as a user might keep one: its node-host's state and its device's,
//! copied while both are stopped, and put back later (a restored old backup is how a
//! tenant broadcasts a revoked commitment in the justice tests).

use std::path::{Path, PathBuf};

use crate::pair::Tenant;
use crate::{Scheduler, alive, eventually, node_pid};

/// A copy of a tenant's state, taken with its signer and node-host stopped.
pub struct Backup {
    kept: Vec<PathBuf>,
    dir: tempfile::TempDir,
}

impl Backup {
    /// Stops `who`'s signer and node-host and copies their state; both stay stopped.
    pub fn take(s: &Scheduler, who: &Tenant) -> Backup {
        stop(s, who);
        let backup = Backup {
            kept: state_of(s, who),
            dir: tempfile::tempdir().unwrap(),
        };
        for p in &backup.kept {
            copy(p, backup.dir.path());
        }
        backup
    }

    /// Stops `who`'s signer and node-host and puts this backup back over their state;
    /// both stay stopped.
    pub fn restore(&self, s: &Scheduler, who: &Tenant) {
        stop(s, who);
        for p in &self.kept {
            let _ = std::fs::remove_dir_all(p);
            let _ = std::fs::remove_file(p);
            copy(&self.dir.path().join(p.file_name().unwrap()), p);
        }
    }
}

/// Stops `who`'s signer, then its node-host (SIGTERM), and waits for it to be gone.
fn stop(s: &Scheduler, who: &Tenant) {
    who.stop_signer();
    let pid = node_pid(s, &who.cli.node_id()).unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    eventually("the node-host is gone", || !alive(pid));
}

/// What a tenant's backup holds: its node-host's state and its device's.
fn state_of(s: &Scheduler, who: &Tenant) -> Vec<PathBuf> {
    let d = s.node_dir(&who.cli.node_id());
    vec![d.ldk_store(), who.cli.dir.clone()]
}

/// `cp -a from to`.
fn copy(from: &Path, to: &Path) {
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok, "cannot copy {} to {}", from.display(), to.display());
}
