//! The `scheduler` binary's command line, run as an operator would.

use std::process::Command;

fn scheduler() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scheduler"))
}

#[test]
fn operator_commands_on_a_missing_data_directory_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = scheduler()
        .arg("--data-dir")
        .arg(dir.path().join("nothing-here"))
        .args(["invite", "create", "--count", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("scheduler run"), "{err}");
    assert!(
        !dir.path().join("nothing-here").exists(),
        "nothing is created by a failed command"
    );
}

#[test]
fn run_refuses_an_unknown_network_before_touching_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = scheduler()
        .arg("--data-dir")
        .arg(&data)
        .args(["run", "--network", "mainnet-ish", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown network"));
    assert!(!data.exists());
}

#[test]
fn operator_commands_work_on_a_stopped_scheduler_and_refuse_bad_counts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Make the database the way a first run would, without serving.
    std::fs::create_dir_all(&data).unwrap();
    skylight_scheduler::store::Store::open(&data.join("scheduler.redb"), Some("regtest")).unwrap();

    let out = scheduler()
        .arg("--data-dir")
        .arg(&data)
        .args(["invite", "create", "--count", "3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let codes: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(codes.len(), 3);

    let out = scheduler()
        .arg("--data-dir")
        .arg(&data)
        .args(["invite", "list"])
        .output()
        .unwrap();
    let listing = String::from_utf8(out.stdout).unwrap();
    for code in &codes {
        assert!(listing.contains(code.as_str()));
    }

    let out = scheduler()
        .arg("--data-dir")
        .arg(&data)
        .args(["invite", "create", "--count", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
