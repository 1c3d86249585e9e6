//! The `signer-cli` binary's command line, for what needs no scheduler.

use std::io::Write;
use std::process::{Command, Stdio};

fn signer(dir: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_signer-cli"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn show_before_init_says_to_init() {
    let dir = tempfile::tempdir().unwrap();
    let out = signer(&dir.path().join("s"), &["show"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("signer-cli init"));
}

#[test]
fn a_bad_mnemonic_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("s");
    let out = signer(
        &data,
        &["init", "--import-mnemonic"],
        "abandon abandon abandon\n",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("BIP39"));
    assert!(!data.join("hsm_secret").exists());
}

#[test]
fn a_raw_secret_imports_and_gives_the_greenlight_test_node() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("s");
    let out = signer(&data, &["init", "--import-secret-hex"], &"00".repeat(32));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = signer(&data, &["show"], "");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("02058e8b6c2ad363ec59aa136429256d745164c2bdc87f98f0a68690ec2c5c9b0b"),
        "{text}"
    );
    assert!(text.contains("not registered"));
}
