//! `scheduler demo --once`: the newcomer's tour runs to its end through the real binaries
//! and leaves nothing behind.

use std::process::Command;

use skylight_test_support::bin;

#[test]
fn scheduler_demo_once_registers_two_tenants_opens_a_channel_pays_each_way_and_cleans_up() {
    let out = Command::new(bin("scheduler"))
        .args(["demo", "--once"])
        .env_remove("SKYLIGHT_DATA_DIR")
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "1. Starting a scheduler",
        "2. Registering Alice and Bob",
        "3. Funding Alice's wallet",
        "4. Alice opens a 200,000 sat channel to Bob",
        "Bob sees coffee (10000 sat) paid",
        "Alice sees change (2000 sat) paid",
        "Done: two tenants, one channel, a payment each way.",
        "Try next",
    ] {
        assert!(printed.contains(step), "no {step:?} in:\n{printed}");
    }
    let dir = printed
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("Skylight demo in "))
        .expect("the demo says where it runs");
    assert!(!std::path::Path::new(dir).exists(), "{dir} is left behind");
    let leftover = Command::new("pgrep").args(["-f", dir]).output().unwrap();
    assert!(
        leftover.stdout.is_empty(),
        "processes left running: {}",
        String::from_utf8_lossy(&leftover.stdout)
    );
}
