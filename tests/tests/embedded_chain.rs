//! The scheduler's embedded regtest chain, through the real `scheduler` and `devchain`
//! binaries: operator commands, JSON-RPC, and what survives a restart.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use skylight_client::chain::ChainClient;
use skylight_test_support::{Scheduler, bin};

const ADDRESS: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

async fn call(c: &ChainClient, method: &str, params: &[Value]) -> Value {
    c.call(method, params)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e:#}"))
}

#[tokio::test]
async fn the_scheduler_runs_a_regtest_chain_that_survives_a_restart() {
    let mut s = Scheduler::start(&["--shutdown-grace", "1"]).unwrap();
    let tip = s.chain(&["tip"]);
    assert!(
        tip.starts_with("height 101 "),
        "a new chain has 101 blocks: {tip}"
    );

    // Fund an address, confirm it, and leave a second payment in the mempool.
    let confirmed = s.chain(&["fund", ADDRESS, "1.5"]);
    let mined = s.chain(&["mine", "1"]);
    assert_eq!(mined.lines().count(), 1);
    let waiting = s.chain(&["fund", ADDRESS, "0.25"]);

    let chain_dir = s.dir.join("chain");
    let client = skylight_devchain::client::for_dir(&chain_dir).unwrap();
    let before_tip = call(&client, "getbestblockhash", &[]).await;
    let out = call(&client, "gettxout", &[json!(confirmed), json!(0)]).await;
    assert_eq!(out["confirmations"], json!(1));
    assert_eq!(call(&client, "getrawmempool", &[]).await, json!([waiting]));
    let cookie_mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(chain_dir.join("rpc.cookie"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(cookie_mode, 0o600);

    s.restart().unwrap();
    let client = skylight_devchain::client::for_dir(&chain_dir).unwrap();
    assert_eq!(call(&client, "getbestblockhash", &[]).await, before_tip);
    assert_eq!(call(&client, "getblockcount", &[]).await, json!(102));
    let out = call(&client, "gettxout", &[json!(confirmed), json!(0)]).await;
    assert_eq!(out["confirmations"], json!(1), "the UTXO set survived");
    assert_eq!(
        call(&client, "getrawmempool", &[]).await,
        json!([waiting]),
        "the mempool survived"
    );

    // Mining after the restart confirms what waited.
    s.chain(&["mine", "1"]);
    assert_eq!(call(&client, "getrawmempool", &[]).await, json!([]));
    s.stop().unwrap();

    // Stopped: operator chain commands say so.
    let out = s.command(&["chain", "tip"]).unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("running"));
}

struct Devchain(Child);
impl Drop for Devchain {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_devchain(dir: &std::path::Path) -> Devchain {
    let _ = std::fs::remove_file(dir.join("rpc-uri"));
    let child = Command::new(bin("devchain"))
        .arg("--data-dir")
        .arg(dir)
        .args(["run", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join("rpc-uri").exists() {
        assert!(Instant::now() < deadline, "devchain did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Devchain(child)
}

#[tokio::test]
async fn the_standalone_devchain_keeps_its_blocks_through_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("chain");
    let mut d = start_devchain(&dir);
    let client = skylight_devchain::client::for_dir(&dir).unwrap();
    let hashes = call(&client, "generatetoaddress", &[json!(5), json!(ADDRESS)]).await;
    let tip = hashes[4].clone();
    d.0.kill().unwrap();
    d.0.wait().unwrap();

    let _d = start_devchain(&dir);
    let client = skylight_devchain::client::for_dir(&dir).unwrap();
    assert_eq!(
        call(&client, "getbestblockhash", &[]).await,
        tip,
        "mined blocks are durable"
    );
    assert_eq!(call(&client, "getblockcount", &[]).await, json!(106));
}
