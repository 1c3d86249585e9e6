//! The scheduler's configuration file: a layer under flags and the environment, over the
//! defaults; unknown keys refused by name; `scheduler config show` says where each value
//! came from.

use std::process::{Command, Output};

use skylight_test_support::{Scheduler, SignerCli, bin};

/// `scheduler --data-dir <dir> <args>` with only `env` of the SKYLIGHT_ variables set (the
/// developer's own must not decide the test).
fn scheduler(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin("scheduler"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SKYLIGHT_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.arg("--data-dir")
        .arg(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "scheduler failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn line<'a>(shown: &'a str, key: &str) -> &'a str {
    shown
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")) || l.starts_with(&format!("# {key} (")))
        .unwrap_or_else(|| panic!("no {key} in:\n{shown}"))
}

const FILE: &str = r#"
invites-per-tenant = 1
challenge-ttl = 120
hostname = ["ln.example.org", "10.0.0.7"]
webhook-allow-http = true
node-signer-deadline = 45
bitcoind-rpc-cookie = "/nonexistent/.cookie"
"#;

#[test]
fn a_file_setting_gives_way_to_the_environment_and_a_flag_to_both() {
    let tmp = tempfile::tempdir().unwrap();
    // Only the defaults: no file yet.
    let shown = stdout(&scheduler(tmp.path(), &["config", "show"], &[]));
    assert!(shown.contains("(no configuration file)"), "{shown}");
    assert_eq!(
        line(&shown, "invites-per-tenant"),
        "invites-per-tenant = 0  # default"
    );
    assert!(
        line(&shown, "node-signer-deadline")
            .starts_with("# node-signer-deadline (not set: node-host's default, "),
        "{shown}"
    );

    // bitcoind-rpc-cookie without bitcoind-rpc is refused as `run` refuses it: `show`
    // checks what it shows.
    std::fs::write(tmp.path().join("scheduler.toml"), FILE).unwrap();
    let out = scheduler(tmp.path(), &["config", "show"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without --bitcoind-rpc"), "{err}");

    let file = FILE.replace("bitcoind-rpc-cookie = \"/nonexistent/.cookie\"\n", "");
    std::fs::write(tmp.path().join("scheduler.toml"), &file).unwrap();
    let shown = stdout(&scheduler(tmp.path(), &["config", "show"], &[]));
    assert!(shown.contains("scheduler.toml"), "{shown}");
    assert_eq!(
        line(&shown, "invites-per-tenant"),
        "invites-per-tenant = 1  # file"
    );
    assert_eq!(line(&shown, "challenge-ttl"), "challenge-ttl = 120  # file");
    assert_eq!(
        line(&shown, "hostname"),
        "hostname = [\"ln.example.org\", \"10.0.0.7\"]  # file"
    );
    assert_eq!(
        line(&shown, "webhook-allow-http"),
        "webhook-allow-http = true  # file"
    );
    assert_eq!(
        line(&shown, "node-signer-deadline"),
        "node-signer-deadline = 45  # file"
    );
    assert_eq!(
        line(&shown, "listen"),
        "listen = \"127.0.0.1:2601\"  # default"
    );

    // The environment wins over the file...
    let env = [
        ("SKYLIGHT_INVITES_PER_TENANT", "5"),
        ("SKYLIGHT_HOSTNAMES", "a.example"),
    ];
    let shown = stdout(&scheduler(tmp.path(), &["config", "show"], &env));
    assert_eq!(
        line(&shown, "invites-per-tenant"),
        "invites-per-tenant = 5  # SKYLIGHT_INVITES_PER_TENANT"
    );
    assert_eq!(
        line(&shown, "hostname"),
        "hostname = [\"a.example\"]  # SKYLIGHT_HOSTNAMES"
    );
    assert_eq!(line(&shown, "challenge-ttl"), "challenge-ttl = 120  # file");

    // ...and a flag over both.
    let shown = stdout(&scheduler(
        tmp.path(),
        &["config", "show", "--invites-per-tenant", "7"],
        &env,
    ));
    assert_eq!(
        line(&shown, "invites-per-tenant"),
        "invites-per-tenant = 7  # command line"
    );
}

#[test]
fn an_unknown_key_or_a_value_of_the_wrong_kind_is_refused_naming_it_and_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("elsewhere.toml");
    let refused = |text: &str| {
        std::fs::write(&config, text).unwrap();
        let out = scheduler(
            tmp.path(),
            &["config", "show", "--config", config.to_str().unwrap()],
            &[],
        );
        assert!(!out.status.success(), "{text:?} was taken");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused("invites-per-tenant = 1\nlisten-address = \"0.0.0.0:1\"\n");
    assert!(err.contains("unknown key \"listen-address\""), "{err}");
    assert!(err.contains("elsewhere.toml"), "{err}");
    let err = refused("invites_per_tenant = 1\n");
    assert!(err.contains("did you mean \"invites-per-tenant\""), "{err}");
    let err = refused("bitcoind-rpc-password = \"hunter2\"\n");
    assert!(err.contains("bitcoind-rpc-password-file"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    let err = refused("invites-per-tenant = \"many\"\n");
    assert!(err.contains("elsewhere.toml"), "{err}");
    assert!(err.contains("many"), "{err}");
    let err = refused("webhook-allow-http = \"yes\"\n");
    assert!(
        err.contains("webhook-allow-http must be true or false"),
        "{err}"
    );
    let err = refused("listen = [\n");
    assert!(err.contains("is not valid TOML"), "{err}");

    // A file named on the command line must exist: a typo is not "no file".
    let out = scheduler(
        tmp.path(),
        &["config", "show", "--config", "/nonexistent/scheduler.toml"],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent"));
}

#[test]
fn a_running_scheduler_uses_its_data_directorys_file() {
    // Each new tenant is given as many invite codes as the file says.
    let s = Scheduler::start_with_file("invites-per-tenant = 1\n", &[], &[]).unwrap();
    let cli = SignerCli::registered(&s).unwrap();
    let out = s.command(&["invite", "list"]).unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    let owned = listed
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(cli.node_id().as_str()))
        .count();
    assert_eq!(owned, 1, "{listed}");
}
