//! The signer is the only authority, through the real binaries: a device without the seed
//! cannot answer signing requests or change the stored state; a node-host that leaves an
//! entry out of the state, or ships a used device request again, is refused by the signer.

use std::str::FromStr;

use bitcoin::secp256k1::SecretKey;
use lightning_signer::lightning_invoice::Bolt11Invoice;
use serde_json::Value;
use skylight_client::keys::NodeKeys;
use skylight_client::secret::HsmSecret;
use skylight_client::signer::Watermarks;
use skylight_client::state_key::StateSigner;
use skylight_client::{creds, identity, tls};
use skylight_proto::greenlight::node_client::NodeClient;
use skylight_proto::greenlight::{Empty, HsmRequest, HsmResponse, SignerStateEntry};
use skylight_proto::scheduler::ScheduleRequest;
use skylight_test_support::{Run, Scheduler, SignerCli, eventually};
use tonic::transport::Channel;

const FAULTS_ENV: &str = "SKYLIGHT_NODE_HOST_FAULTS";

/// Waits until the node runs with its signer.
fn ready(cli: &SignerCli) {
    eventually("the node runs with its signer", || {
        let r = cli.run(&["node", "getinfo"]).unwrap();
        r.ok && r.json().get("warning_lightningd_sync").is_none()
    });
}

/// A scheduler whose node-hosts read faults from a file; the file's path.
fn with_faults(args: &[&str]) -> (Scheduler, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let faults = dir.path().join("faults");
    std::fs::write(&faults, "").unwrap();
    let s = Scheduler::start_with_env(args, &[(FAULTS_ENV, faults.to_str().unwrap())]).unwrap();
    (s, faults, dir)
}

/// The tenant's node, reached with `id`.
async fn node_of(s: &Scheduler, id: &tls::TlsIdentity) -> NodeClient<Channel> {
    let uri = tls::scheduler(&s.uri, id)
        .await
        .unwrap()
        .schedule(ScheduleRequest::default())
        .await
        .unwrap()
        .into_inner()
        .grpc_uri;
    NodeClient::new(tls::channel(&uri, id).await.unwrap())
}

/// A tombstone for `key`: what a device that wanted the node's copy gone would send.
fn tombstone(key: &str) -> SignerStateEntry {
    SignerStateEntry {
        version: u64::MAX,
        key: key.to_string(),
        value: b"null".to_vec(),
        signature: vec![0; 64],
    }
}

#[test]
fn a_device_without_the_seed_on_the_hsm_stream_has_no_answer_taken_and_no_state_stored() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = Scheduler::start(&["--node-signer-wait", "60"]).unwrap();
    let cli = SignerCli::registered(&s).unwrap();
    // The seed's signer sets the node up (its state is stored at the node), then goes.
    {
        let _signer = cli.spawn(&["run"]).unwrap();
        ready(&cli);
    }
    // An old device: recovered with the seed once, the seed since gone from it. It has a
    // valid certificate of the tenant, and nothing else.
    let old = {
        let secret = HsmSecret::load(&cli.dir.join("hsm_secret")).unwrap();
        let keys = NodeKeys::derive(&secret, bitcoin::Network::Regtest);
        let device = rt
            .block_on(identity::recover(&s.uri, &s.nobody(), &keys))
            .unwrap();
        creds::identity(&device)
    };

    std::thread::scope(|scope| {
        // A call that needs the signer, while only the old device is attached.
        let (mut node, mut stream) = rt.block_on(async {
            let mut node = node_of(&s, &old).await;
            let stream = node
                .stream_hsm_requests(Empty {})
                .await
                .unwrap()
                .into_inner();
            (node, stream)
        });
        let waiting = scope.spawn(|| cli.invoice("asked").unwrap());
        let req: HsmRequest = rt.block_on(stream.message()).unwrap().unwrap();
        let victim = req
            .signer_state
            .iter()
            .find(|e| e.key.starts_with("node/"))
            .expect("the first request carries the whole state")
            .clone();

        // Its answer, with a tombstone for an entry of the node's: no proof of the seed.
        let forged = HsmResponse {
            request_id: req.request_id,
            raw: vec![0, 1],
            signer_state: vec![tombstone(&victim.key)],
            ..Default::default()
        };
        let st = rt
            .block_on(node.respond_hsm_request(forged.clone()))
            .unwrap_err();
        assert_eq!(st.code(), tonic::Code::PermissionDenied, "{st:?}");
        assert!(st.message().contains("holds this node's seed"), "{st:?}");
        // Proven by a seed of its own (its state key attested by a node key of its own):
        // the node pinned its tenant's state key when the seed's signer first answered.
        let own_node_key = SecretKey::new(&mut bitcoin::secp256k1::rand::thread_rng());
        let own = StateSigner::new(&[0x77; 32], &own_node_key);
        let mut forged = forged;
        own.sign(&mut forged.signer_state[0]);
        own.prove(&req.raw, &mut forged);
        let st = rt.block_on(node.respond_hsm_request(forged)).unwrap_err();
        assert_eq!(st.code(), tonic::Code::PermissionDenied, "{st:?}");
        assert!(st.message().contains("another state key"), "{st:?}");

        // The seed's signer attaches: the call waiting all along is answered by it.
        let _signer = cli.spawn(&["run"]).unwrap();
        let asked = waiting.join().unwrap().json();
        let bolt11 = Bolt11Invoice::from_str(asked["bolt11"].as_str().unwrap()).unwrap();
        assert_eq!(
            hex::encode(bolt11.recover_payee_pub_key().serialize()),
            cli.node_id(),
            "signed by the node key, not by the old device's answer"
        );

        // The node still holds the entry: a new stream's first request carries the whole
        // state, the entry in it at its version (a tombstoned key is never shipped).
        let mut fresh = rt.block_on(async {
            node_of(&s, &old)
                .await
                .stream_hsm_requests(Empty {})
                .await
                .unwrap()
                .into_inner()
        });
        let next = scope.spawn(|| cli.invoice("after").unwrap());
        let req: HsmRequest = rt.block_on(fresh.message()).unwrap().unwrap();
        let kept = req
            .signer_state
            .iter()
            .find(|e| e.key == victim.key)
            .expect("the entry is still stored");
        assert!(kept.version >= victim.version && kept.version != u64::MAX);
        next.join().unwrap().json();
    });
}

#[test]
fn a_state_with_a_marked_entry_left_out_is_refused_after_the_signer_restarts() {
    let (s, faults, _dir) = with_faults(&[]);
    let cli = SignerCli::registered(&s).unwrap();
    {
        let _signer = cli.spawn(&["run"]).unwrap();
        ready(&cli);
        cli.invoice("one").unwrap().json();
        cli.invoice("two").unwrap().json();
    }
    // The device's marks name the node's allowlist entry, and hold no copy of it (the node
    // confirmed storing it): only the node's copy can bring it back.
    let marks = Watermarks::open(&cli.dir.join("state-marks.json")).unwrap();
    let allowlist = marks
        .iter()
        .map(|(k, _)| k.to_string())
        .find(|k| k.starts_with("node/allowlist/"))
        .expect("a mark for the allowlist");
    let kept: Vec<String> = marks.unconfirmed().into_iter().map(|(k, ..)| k).collect();
    assert!(
        !kept.contains(&allowlist),
        "the device keeps no copy: {kept:?}"
    );

    // node-host leaves it out of what it ships; the restarted signer refuses.
    std::fs::write(&faults, "omit-state node/allowlist/\n").unwrap();
    {
        let _signer = cli.spawn(&["run"]).unwrap();
        let r = cli.invoice("three").unwrap();
        assert!(
            !r.ok
                && r.stderr.contains("PermissionDenied")
                && r.stderr.contains("leaves out")
                && r.stderr.contains(&allowlist),
            "{}",
            r.stderr
        );
    }
    // Shipped whole again, the signer restarted signs.
    std::fs::write(&faults, "").unwrap();
    let _signer = cli.spawn(&["run"]).unwrap();
    cli.invoice("four").unwrap().json();
}

#[test]
fn a_pay_request_shipped_again_after_its_payment_is_refused_and_a_new_one_is_approved() {
    // node-host keeps the first signed Pay it sees and ships it in place of later ones.
    let (s, faults, _dir) = with_faults(&[]);
    std::fs::write(&faults, "replay-signed /cln.Node/Pay\n").unwrap();
    let cli = SignerCli::registered(&s).unwrap();
    let _signer = cli.spawn(&["run"]).unwrap();
    ready(&cli);
    let bolt11 = skylight_test_support::unreachable_invoice();
    let pay = || {
        cli.run(&["node", "pay", &bolt11, "--retry-for", "1"])
            .unwrap()
    };
    let no_route = |r: &Run| !r.ok && r.stderr.contains("RouteNotFound");

    // Approved (its Pay request spent), then no route: the payment failed.
    let first = pay();
    assert!(no_route(&first), "{}", first.stderr);
    // The user tries again; node-host ships the first request instead of the new one.
    let again = pay();
    assert!(
        !again.ok
            && again.stderr.contains("PermissionDenied")
            && again.stderr.contains("approved a payment already"),
        "{}",
        again.stderr
    );
    // Shipped honestly, the new request approves the retry.
    std::fs::write(&faults, "").unwrap();
    let honest = pay();
    assert!(no_route(&honest), "{}", honest.stderr);
}

#[test]
fn a_withdraw_request_used_for_one_transaction_approves_no_second_nor_a_doubled_output() {
    let (s, faults, _dir) = with_faults(&[]);
    std::fs::write(&faults, "replay-signed /cln.Node/Withdraw\n").unwrap();
    let cli = SignerCli::registered(&s).unwrap();
    let _signer = cli.spawn(&["run"]).unwrap();
    ready(&cli);
    let addr = cli.run(&["node", "newaddr"]).unwrap().json()["bech32"]
        .as_str()
        .unwrap()
        .to_string();
    // Two coins, so that a second withdrawal has one of its own to spend.
    for _ in 0..2 {
        s.chain(&["fund", &addr, "0.5"]);
    }
    s.chain(&["mine", "1"]);
    eventually("the wallet sees both coins confirmed", || {
        let funds = cli.run(&["node", "listfunds"]).unwrap().json();
        let outputs = funds["outputs"].as_array().unwrap();
        outputs.len() == 2 && outputs.iter().all(|o| o["status"] == "confirmed")
    });
    let to = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
    let withdraw = || {
        cli.run(&["node", "withdraw", to, "30000", "--feerate-perkw", "500"])
            .unwrap()
    };
    let first = withdraw().json();
    assert!(first["txid"].is_string(), "{first}");
    // The same destination and amount again: node-host ships the used request instead.
    let again = withdraw();
    assert!(
        !again.ok
            && again.stderr.contains("PermissionDenied")
            && again.stderr.contains("unapproved destination"),
        "{}",
        again.stderr
    );
    let mempool = s.chain(&["call", "getrawmempool"]);
    assert_eq!(
        serde_json::from_str::<Value>(&mempool).unwrap(),
        serde_json::json!([first["txid"]]),
        "only the first transaction exists"
    );
    // One request, and node-host builds the transaction with its output twice: the request
    // approves one output only.
    std::fs::write(&faults, "double-withdraw\n").unwrap();
    let doubled = withdraw();
    assert!(
        !doubled.ok
            && doubled.stderr.contains("PermissionDenied")
            && doubled.stderr.contains("unapproved destination"),
        "{}",
        doubled.stderr
    );
    let mempool = s.chain(&["call", "getrawmempool"]);
    assert_eq!(
        serde_json::from_str::<Value>(&mempool).unwrap(),
        serde_json::json!([first["txid"]]),
        "the doubled transaction never reached the chain"
    );
    // The request itself, asked anew, is approved.
    std::fs::write(&faults, "").unwrap();
    withdraw().json();
}
