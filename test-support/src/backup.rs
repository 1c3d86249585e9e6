//! A tenant's backup, as a user might keep one: its node-host's state and its device's,
//! copied while the node-host is stopped, and put back later (a restored old backup is
//! how a tenant broadcasts a revoked commitment in the justice tests).

use std::path::{Path, PathBuf};

use crate::pair::Tenant;
use crate::{Scheduler, alive, eventually, node_pid};

/// Stops `who`'s node-host (SIGTERM) and waits for it to be gone.
pub fn stop_node_host(s: &Scheduler, who: &Tenant) {
    let pid = node_pid(s, &who.cli.node_id()).unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    eventually("the node-host is gone", || !alive(pid));
}

/// What a tenant's backup holds: its node-host's state and its device's.
pub fn state_of(s: &Scheduler, who: &Tenant) -> Vec<PathBuf> {
    let d = s.node_dir(&who.cli.node_id());
    vec![
        d.signer_state(),
        d.channel_signers(),
        d.invoices(),
        d.payments(),
        d.ldk(),
        d.next_dbid(),
        who.cli.dir.clone(),
    ]
}

/// Copies `paths` into `to`, each under its own name.
pub fn back_up(paths: &[PathBuf], to: &Path) {
    for p in paths {
        let ok = std::process::Command::new("cp")
            .arg("-a")
            .arg(p)
            .arg(to)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot back up {}", p.display());
    }
}

/// Puts what [`back_up`] kept in `from` back over `paths`.
pub fn restore(paths: &[PathBuf], from: &Path) {
    for p in paths {
        let _ = std::fs::remove_dir_all(p);
        let _ = std::fs::remove_file(p);
        let kept = from.join(p.file_name().unwrap());
        let ok = std::process::Command::new("cp")
            .arg("-a")
            .arg(&kept)
            .arg(p)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot restore {}", p.display());
    }
}
