//! `signer-cli run` against the real scheduler and node-host: it attaches to its node when
//! the node is scheduled, keeps it from idling, and re-attaches by itself after the node is
//! killed and scheduled again.

use std::time::Duration;

use skylight_test_support::{Scheduler, SignerCli, alive, eventually, node_pid as pid};

fn node_log(s: &Scheduler, node_id: &str) -> String {
    std::fs::read_to_string(s.node_dir(node_id).log()).unwrap_or_default()
}

#[test]
fn the_signer_attaches_keeps_the_node_up_and_reattaches_after_a_crash() {
    let s = Scheduler::start(&["--node-idle-timeout", "2"]).unwrap();
    let cli = SignerCli::registered(&s).unwrap();
    let node = cli.node_id();

    let signer = cli.spawn(&["run"]).unwrap();
    let r = cli.run(&["schedule"]).unwrap();
    assert!(
        r.ok && r.stdout.starts_with("https://localhost:"),
        "{} {}",
        r.stdout,
        r.stderr
    );
    eventually("the signer attaches", || {
        node_log(&s, &node).matches("signer attached").count() >= 1
    });

    // Attached, the node outlives its idle timeout.
    let first = pid(&s, &node).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        alive(first),
        "a node with its signer attached does not idle out"
    );

    // Crash the node; schedule it again; the running signer finds it by itself.
    std::process::Command::new("kill")
        .args(["-9", &first.to_string()])
        .status()
        .unwrap();
    eventually("the node is gone", || !alive(first));
    let r = cli.run(&["schedule"]).unwrap();
    assert!(r.ok, "{}", r.stderr);
    let second = pid(&s, &node).unwrap();
    assert_ne!(second, first);
    eventually("the signer re-attaches", || {
        node_log(&s, &node).matches("signer attached").count() >= 2
    });

    // Without its signer the node idles out.
    drop(signer);
    eventually("the node idles out", || !alive(second));
}
