//! A node-host is confined to its own node directory (Landlock): tried from inside a real
//! node-host, through the faults file's `try-read` lines, it cannot read the scheduler's
//! root CA key, its database, or another tenant's signer state, while it reads its own.
//!
//! This machine's kernel has Landlock; on one without it the test says so loudly and
//! fails, rather than passing without having checked anything.

use skylight_test_support::{Scheduler, SignerCli};

#[test]
fn a_node_host_cannot_read_the_ca_key_the_database_or_another_tenants_signer_state() {
    let faults_dir = tempfile::tempdir().unwrap();
    let faults = faults_dir.path().join("faults");
    std::fs::write(&faults, "").unwrap();
    let s = Scheduler::start_with_env(
        &[],
        &[("SKYLIGHT_NODE_HOST_FAULTS", faults.to_str().unwrap())],
    )
    .unwrap();
    let a = SignerCli::registered(&s).unwrap();
    let b = SignerCli::registered(&s).unwrap();
    // B's node runs first, so its files exist.
    assert!(b.run(&["schedule"]).unwrap().ok);
    let b_state = s.node_dir(&b.node_id()).ldk_store();
    assert!(b_state.exists());
    let a_dir = s.node_dir(&a.node_id());

    let theirs = [
        s.dir.join("ca-key.pem"),
        s.dir.join("users-ca-key.pem"),
        s.dir.join("scheduler.redb"),
        // What the admin socket asks of every call: a confined node-host can reach the
        // socket's path (not a file access to Landlock) but not the token.
        s.dir.join("admin.token"),
        b_state,
    ];
    let own = a_dir.root().join("server-key.pem");
    let mut probes: Vec<String> = theirs
        .iter()
        .map(|p| format!("try-read {}", p.display()))
        .collect();
    probes.push(format!("try-read {}", own.display()));
    // The scheduler is its parent: it may not even ask to signal it.
    probes.push("try-signal-parent".into());
    std::fs::write(&faults, probes.join("\n")).unwrap();

    // A's node-host starts now, confines itself, and tries each.
    assert!(a.run(&["schedule"]).unwrap().ok);
    let log = std::fs::read_to_string(a_dir.log()).unwrap();
    assert!(
        !log.contains("this kernel has no Landlock"),
        "THIS KERNEL HAS NO LANDLOCK: node-host confinement cannot be checked here"
    );
    assert!(
        log.contains("confined to the node directory (Landlock"),
        "node-host did not confine itself:\n{log}"
    );
    for p in &theirs {
        let p = p.display().to_string();
        let line = log
            .lines()
            .find(|l| l.contains("isolation probe") && l.contains(&p))
            .unwrap_or_else(|| panic!("no probe of {p} in:\n{log}"));
        assert!(
            line.contains("could not read the file") && line.contains("Permission denied"),
            "{line}"
        );
    }
    let signal = log
        .lines()
        .find(|l| l.contains("isolation probe") && l.contains("signal its parent"))
        .unwrap_or_else(|| panic!("no signal probe in:\n{log}"));
    assert!(
        signal.contains("may not signal its parent"),
        "a confined node-host may signal the scheduler: {signal}"
    );
    // The probe itself works: its own key it reads.
    let own = own.display().to_string();
    assert!(
        log.lines()
            .any(|l| l.contains("isolation probe: read the file") && l.contains(&own)),
        "{log}"
    );
    // And a confined node still works: it answers, through its signer, as before.
    let _signer = a.spawn(&["run"]).unwrap();
    let invoice = a.invoice("confined").unwrap();
    assert!(invoice.ok, "{}", invoice.stderr);
}
