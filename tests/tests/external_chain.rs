//! The scheduler on an external bitcoind (a `devchain run` process of its own standing in
//! for one), as an operator runs it: credentials in the URL or a cookie file, never on a
//! command line or in a log; a chain of another network refused; a chain that goes away
//! reported and recovered from; Lightning peers on an address other than 127.0.0.1.

use std::net::{IpAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use skylight_test_support::pair::{Dial, Pair, invoice, paid, synced};
use skylight_test_support::{
    ExternalChain, Scheduler, SignerCli, bin, command_lines_holding, eventually,
};

/// A random secret, as an operator's password would be.
fn random_password() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    hex::encode(sha256(&format!("{nanos}-{}", std::process::id())))
}

fn sha256(text: &str) -> [u8; 32] {
    use bitcoin::hashes::{Hash, sha256};
    sha256::Hash::hash(text.as_bytes()).to_byte_array()
}

/// `n` consecutive ports free on `ip` now.
fn free_ports(ip: IpAddr, n: u16) -> (u16, u16) {
    loop {
        let start = TcpListener::bind((ip, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if start.checked_add(n).is_none() {
            continue;
        }
        if (start..start + n).all(|p| TcpListener::bind((ip, p)).is_ok()) {
            return (start, start + n - 1);
        }
    }
}

/// Every log of the scenario: the scheduler's, the node-hosts', the signers', the chain's.
fn logs(pair: &Pair, chain: &ExternalChain) -> Vec<PathBuf> {
    let mut all = vec![
        pair.s.log().expect("the scheduler logs to a file"),
        chain.log(),
    ];
    for t in [&pair.a, &pair.b] {
        all.push(pair.s.node_dir(&t.cli.node_id()).log());
        all.push(t.cli.log());
    }
    all
}

/// No process's command line and no log holds `secret`.
fn nowhere(secret: &str, pair: &Pair, chain: &ExternalChain) {
    // The search sees the processes' command lines (the scheduler's among them).
    assert!(!command_lines_holding(&pair.s.dir.display().to_string()).is_empty());
    let lines = command_lines_holding(secret);
    assert!(
        lines.is_empty(),
        "a command line holds the secret: {lines:?}"
    );
    for log in logs(pair, chain) {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            !text.is_empty() || !log.ends_with("node-host.log"),
            "{} is empty",
            log.display()
        );
        assert!(!text.contains(secret), "{} holds the secret", log.display());
    }
}

/// A opens a channel to B, pays it, and closes cooperatively; each side's share confirms in
/// its wallet.
fn fund_pay_and_close(pair: &Pair) {
    pair.fund_channel();
    pair.confirm_channel();
    pair.channel_still_pays("over-the-external-chain");
    // Enough that B's share of the channel is an output of the close.
    pair.a
        .call(&["pay", &invoice(&pair.b, 15_000_000, "b-share")]);
    eventually("B is paid its share", || paid(&pair.b, "b-share"));
    let closed = pair.a.call(&["close", &pair.b_id]);
    assert_eq!(closed["type"], "mutual", "{closed}");
    let close_txid = closed["txids"][0].as_str().unwrap().to_string();
    pair.s.chain(&["mine", "1"]);
    for (who, t) in [("A", &pair.a), ("B", &pair.b)] {
        eventually(&format!("{who}'s share of the channel confirms"), || {
            t.call(&["listfunds"])["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o["txid"] == close_txid.as_str() && o["status"] == "confirmed")
        });
    }
}

#[test]
fn two_tenants_on_a_bitcoind_whose_url_holds_the_password_pay_and_close_and_no_command_line_or_log_holds_it()
 {
    let password = random_password();
    let chain = ExternalChain::start_with_user("skylight", &password).unwrap();
    let url = format!("http://skylight:{password}@127.0.0.1:{}", chain.port);
    // Lightning peers on a second loopback address, from a range, announced as it.
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    let (first, last) = free_ports(other, 10);
    let range = format!("{first}-{last}");
    let args = [
        "--node-p2p-bind",
        "127.0.0.2",
        "--node-p2p-ports",
        &range,
        "--node-p2p-announce",
        "127.0.0.2",
    ];
    let pair = Pair::connected_by(
        |env| {
            let mut env = env.to_vec();
            // The URL with its password in the environment, as the README says: a flag
            // would put it on the scheduler's command line.
            env.push(("SKYLIGHT_BITCOIND_RPC", &url));
            Scheduler::start_on(&chain, &args, &env).unwrap()
        },
        Dial::Direct,
    );
    let a_id = pair.a.cli.node_id();
    let info = pair.a.call(&["getinfo"]);
    let port = info["binding"][0]["port"].as_u64().unwrap();
    assert_eq!(info["binding"][0]["address"], "127.0.0.2", "{info}");
    assert!(
        (first as u64..=last as u64).contains(&port),
        "{port} not in {range}"
    );
    assert_eq!(
        info["address"],
        serde_json::json!([{"type": "ipv4", "address": "127.0.0.2", "port": port}]),
        "{info}"
    );
    assert!(info.get("warning_bitcoind_sync").is_none(), "{info}");
    // B's port is its own; A reached B on 127.0.0.2 (the pair connected at B's binding).
    let b_port = pair.b.call(&["getinfo"])["binding"][0]["port"]
        .as_u64()
        .unwrap();
    assert_ne!(port, b_port);
    // node-host has the credentials in an owner-only file of its directory.
    let auth = pair.s.node_dir(&a_id).bitcoind_auth();
    assert_eq!(
        std::fs::metadata(&auth).unwrap().permissions().mode() & 0o777,
        0o600
    );
    nowhere(&password, &pair, &chain);

    fund_pay_and_close(&pair);
    nowhere(&password, &pair, &chain);

    // The tenant keeps its port across a restart: its channel peers find it where it was.
    let mut pair = pair;
    pair.s.restart().unwrap();
    pair.a.wake();
    assert_eq!(
        pair.a.call(&["getinfo"])["binding"][0]["port"].as_u64(),
        Some(port)
    );
}

#[test]
fn two_tenants_on_a_bitcoind_with_a_cookie_ride_out_its_restart_and_a_peer_is_dialled_by_name() {
    let mut chain = ExternalChain::start().unwrap();
    let (url, cookie) = (chain.url(), chain.cookie());
    let pair = Pair::connected_by(
        |env| {
            let args = [
                "--bitcoind-rpc",
                url.as_str(),
                "--bitcoind-rpc-cookie",
                cookie.to_str().unwrap(),
            ];
            // The scheduler's own info lines too: it says when the chain is back.
            let mut env = env.to_vec();
            env.push((
                "RUST_LOG",
                "warn,skylight_scheduler=info,skylight_node_host=info",
            ));
            Scheduler::start_on(&chain, &args, &env).unwrap()
        },
        // ConnectPeer with a host name: A's node resolves it.
        Dial::Host("localhost".into()),
    );
    pair.fund_channel();
    pair.confirm_channel();
    let first_cookie = std::fs::read_to_string(&cookie).unwrap();

    // The chain goes away: both nodes say so in Getinfo, the scheduler in its log.
    chain.stop().unwrap();
    for (who, t) in [("A", &pair.a), ("B", &pair.b)] {
        eventually(&format!("{who} reports the chain down"), || {
            t.call(&["getinfo"])["warning_bitcoind_sync"]
                .as_str()
                .is_some_and(|w| w.contains("does not answer"))
        });
    }
    let scheduler_log = pair.s.log().unwrap();
    let said = |what: &str| {
        std::fs::read_to_string(&scheduler_log)
            .unwrap_or_default()
            .contains(what)
    };
    eventually("the scheduler logs the chain down", || {
        said("the chain cannot be reached")
    });
    // It comes back with a new cookie, as bitcoind does: the nodes read it and go on.
    chain.start_again().unwrap();
    let second_cookie = std::fs::read_to_string(&cookie).unwrap();
    assert_ne!(first_cookie, second_cookie);
    for (who, t) in [("A", &pair.a), ("B", &pair.b)] {
        eventually(&format!("{who} reports the chain back"), || {
            t.call(&["getinfo"]).get("warning_bitcoind_sync").is_none()
        });
    }
    eventually("the scheduler logs the chain back", || {
        said("the chain answers and is in sync again")
    });
    pair.s.chain(&["mine", "1"]);
    synced(&pair.s, &pair.a);
    synced(&pair.s, &pair.b);
    let (a, b) = (&pair.a, &pair.b);
    a.call(&["pay", &invoice(b, 15_000_000, "after-the-restart")]);
    eventually("B is paid after the chain's restart", || {
        paid(b, "after-the-restart")
    });
    let closed = a.call(&["close", &pair.b_id]);
    assert_eq!(closed["type"], "mutual", "{closed}");
    let close_txid = closed["txids"][0].as_str().unwrap().to_string();
    pair.s.chain(&["mine", "1"]);
    eventually("A's share of the channel confirms", || {
        a.call(&["listfunds"])["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["txid"] == close_txid.as_str() && o["status"] == "confirmed")
    });
    for c in [&first_cookie, &second_cookie] {
        let secret = c.trim().split_once(':').unwrap().1;
        nowhere(secret, &pair, &chain);
    }
}

#[test]
fn a_scheduler_pointed_at_a_chain_of_another_network_refuses_to_start_naming_both() {
    let chain = ExternalChain::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin("scheduler"))
        .arg("--data-dir")
        .arg(dir.path().join("scheduler"))
        .args(["run", "--listen", "127.0.0.1:0", "--network", "signet"])
        .args(["--bitcoind-rpc", &chain.url(), "--bitcoind-rpc-cookie"])
        .arg(chain.cookie())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is on regtest") && err.contains("--network signet"),
        "{err}"
    );
}

#[test]
fn bitcoind_credentials_given_twice_or_half_are_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = Command::new(bin("scheduler"))
            .arg("--data-dir")
            .arg(dir.path().join("scheduler"))
            .args(["run", "--listen", "127.0.0.1:0", "--network", "signet"])
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let err = run(
        &["--bitcoind-rpc-cookie", "/c"],
        &[("SKYLIGHT_BITCOIND_RPC", "http://u:p@h:1")],
    );
    assert!(err.contains("given twice"), "{err}");
    assert!(!err.contains("u:p"), "the password is echoed: {err}");
    let err = run(
        &["--bitcoind-rpc", "http://h:1", "--bitcoind-rpc-user", "u"],
        &[],
    );
    assert!(err.contains("needs its password"), "{err}");
    // Refused before anything is made: no database, no CA.
    assert!(!dir.path().join("scheduler").join("scheduler.redb").exists());
}

#[test]
fn a_node_host_on_a_chain_of_another_network_stops_before_serving_naming_both() {
    let chain = ExternalChain::start().unwrap();
    let (url, cookie) = (chain.url(), chain.cookie());
    let args = [
        "--bitcoind-rpc",
        url.as_str(),
        "--bitcoind-rpc-cookie",
        cookie.to_str().unwrap(),
    ];
    let mut s = Scheduler::start_on(&chain, &args, &[]).unwrap();
    // A tenant whose node-host ran once: its directory holds what node-host needs.
    let cli = SignerCli::registered(&s).unwrap();
    let node = cli.node_id();
    assert_eq!(
        cli.run(&["node", "getinfo"]).unwrap().json()["network"],
        "regtest"
    );
    s.stop().unwrap();

    // Started on that directory for signet, against the regtest chain.
    let dir = s.node_dir(&node);
    let out = Command::new(bin("node-host"))
        .args(["--node-id", &node, "--network", "signet", "--data-dir"])
        .arg(dir.root())
        .args(["--bitcoind-rpc", &url, "--bitcoind-cookie"])
        .arg(&cookie)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is on regtest, but this node is on signet"),
        "{err}"
    );
    assert!(!dir.grpc_uri().exists(), "it served before checking");
}
