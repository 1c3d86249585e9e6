//! Pairing a device through the real binaries: `signer-cli pair` on a new device (no seed),
//! `signer-cli approve` on a device of the node, the node's signer minting the new device's
//! rune from what the approval asks and what the approving device may do.

use std::time::{Duration, Instant};

use skylight_test_support::{ChildGuard, Run, Scheduler, SignerCli, eventually};

/// Starts `signer-cli pair` in `device`'s directory; returns it and the device id it prints.
fn start_pairing(device: &SignerCli, args: &[&str]) -> (ChildGuard, String) {
    let mut all = vec!["pair"];
    all.extend_from_slice(args);
    let child = device.spawn(&all).unwrap();
    let mut id = String::new();
    eventually("the new device prints its id", || {
        let log = std::fs::read_to_string(device.log()).unwrap_or_default();
        match log
            .lines()
            .find_map(|l| l.strip_prefix("pairing device id: "))
        {
            Some(found) => {
                id = found.trim().to_string();
                true
            }
            None => false,
        }
    });
    (child, id)
}

/// Waits for `child` to exit; whether it succeeded.
fn exits(child: &mut ChildGuard) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status.success();
        }
        assert!(Instant::now() < deadline, "signer-cli pair did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn refused_naming_the_rune(r: &Run, what: &str) {
    assert!(
        !r.ok && r.stderr.contains("PermissionDenied") && r.stderr.contains("rune does not allow"),
        "{what}: {}",
        r.stderr
    );
}

#[test]
fn a_device_paired_read_only_reads_and_is_refused_every_call_with_effects() {
    let s = Scheduler::start(&[]).unwrap();
    let cli = SignerCli::registered(&s).unwrap();
    let _signer = cli.spawn(&["run"]).unwrap();
    eventually("the node runs with its signer", || {
        cli.run(&["node", "getinfo"]).unwrap().ok
    });

    // The new device has no seed: only what the pairing gives it.
    let phone = SignerCli::new(&s).unwrap();
    let (mut pairing, id) = start_pairing(
        &phone,
        &["--name", "phone", "--read-only", "--description", "a phone"],
    );
    let approved = cli.run(&["approve", &id, "--yes"]).unwrap();
    assert!(
        approved.ok && approved.stdout.contains("restrictions: pubkey="),
        "{}",
        approved.stderr
    );
    assert!(
        exits(&mut pairing),
        "{}",
        std::fs::read_to_string(phone.log()).unwrap()
    );
    assert!(!phone.dir.join("hsm_secret").exists());
    assert_eq!(phone.node_id(), cli.node_id());
    let devices = cli.run(&["devices"]).unwrap();
    assert!(
        devices.stdout.lines().any(|l| l.starts_with("phone ")),
        "{}",
        devices.stdout
    );

    for read in [&["node", "getinfo"][..], &["node", "listfunds"]] {
        let r = phone.run(read).unwrap();
        assert!(r.ok, "{read:?}: {}", r.stderr);
    }
    refused_naming_the_rune(
        &phone
            .run(&["node", "invoice", "--amount-msat", "1000", "--label", "ro"])
            .unwrap(),
        "invoice",
    );
    refused_naming_the_rune(
        &phone
            .run(&[
                "node",
                "withdraw",
                "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080",
                "1000",
            ])
            .unwrap(),
        "withdraw",
    );
    let bolt11 = skylight_test_support::unreachable_invoice();
    refused_naming_the_rune(&phone.run(&["node", "pay", &bolt11]).unwrap(), "pay");

    // The read-only phone may not pair others: its rune does not allow `approvepairing`,
    // and the signer denies; both sides hear it.
    let laptop = SignerCli::new(&s).unwrap();
    let (mut pairing, id) = start_pairing(&laptop, &["--name", "laptop"]);
    let denied = phone.run(&["approve", &id, "--yes"]).unwrap();
    assert!(
        !denied.ok && denied.stderr.contains("PermissionDenied"),
        "{}",
        denied.stderr
    );
    assert!(!exits(&mut pairing));
    let said = std::fs::read_to_string(laptop.log()).unwrap();
    assert!(said.contains("PermissionDenied"), "{said}");
    assert!(!laptop.dir.join("credentials.gfs").exists());
    let why = std::fs::read_to_string(cli.log()).unwrap();
    assert!(
        why.contains("refused to pair") && why.contains("does not allow pairing"),
        "the signer says why: {why}"
    );
}
