//! The node API (`cln.Node`) through the real binaries: `signer-cli node …` against a
//! scheduled node-host whose LDK node runs with the tenant's signer-cli as its signer.

use std::str::FromStr;

use lightning_signer::lightning_invoice::Bolt11Invoice;
use skylight_client::signed_request::RequestSigner;
use skylight_client::tls;
use skylight_proto::cln::node_client::NodeClient;
use skylight_proto::cln::{GetinfoRequest, InvoiceRequest};
use skylight_proto::scheduler::ScheduleRequest;
use skylight_test_support::{Scheduler, SignerCli, alive, eventually, node_pid};

/// The invoice's payee, recovered from its signature.
fn payee(bolt11: &str) -> String {
    let invoice = Bolt11Invoice::from_str(bolt11).expect("a BOLT11 invoice");
    invoice.check_signature().expect("a valid signature");
    hex::encode(invoice.recover_payee_pub_key().serialize())
}

#[test]
fn an_invoice_waits_for_the_signer_is_signed_by_it_and_the_node_survives_crash_and_idling() {
    let s = Scheduler::start(&["--node-signer-wait", "5", "--node-idle-timeout", "3"]).unwrap();
    let cli = SignerCli::registered(&s).unwrap();
    let node = cli.node_id();

    // Before any signer: getinfo answers, and says the Lightning node waits for its signer.
    let info = cli.run(&["node", "getinfo"]).unwrap().json();
    assert_eq!(info["id"], node.as_str());
    assert_eq!(info["network"], "regtest");
    assert_eq!(info["blockheight"], 101);
    assert!(
        info["warning_lightningd_sync"]
            .as_str()
            .unwrap()
            .contains("signer"),
        "{info}"
    );

    // An invoice needs the signer: with none, the call waits, then says what to do.
    let r = cli.invoice("first").unwrap();
    assert!(!r.ok);
    assert!(
        r.stderr.contains("Unavailable") && r.stderr.contains("signer-cli run"),
        "{}",
        r.stderr
    );

    // A call already waiting succeeds once the signer attaches.
    let (r, signer) = std::thread::scope(|scope| {
        let waiting = scope.spawn(|| cli.invoice("first").unwrap());
        let signer = cli.spawn(&["run"]).unwrap();
        (waiting.join().unwrap(), signer)
    });
    let first = r.json();
    let bolt11 = first["bolt11"].as_str().unwrap();
    assert!(bolt11.starts_with("lnbcrt210n1"), "{bolt11}");
    assert_eq!(payee(bolt11), node, "signed with the tenant's node key");
    assert_eq!(first["created_index"], 1);

    // Running, getinfo reports the node without the warning, and where peers connect.
    let info = cli.run(&["node", "getinfo"]).unwrap().json();
    assert_eq!(info["id"], node.as_str());
    assert!(info.get("warning_lightningd_sync").is_none(), "{info}");
    assert!(info["binding"][0]["port"].as_u64().unwrap() > 0, "{info}");

    // A label names one invoice for good.
    let r = cli.invoice("first").unwrap();
    assert!(!r.ok && r.stderr.contains("AlreadyExists"), "{}", r.stderr);

    // kill -9: the next call schedules the node again, the signer re-attaches by itself,
    // and the node read back from disk keeps its invoices.
    let pid = node_pid(&s, &node).unwrap();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    eventually("the node is gone", || !alive(pid));
    let second = cli.invoice("second").unwrap().json();
    assert_eq!(payee(second["bolt11"].as_str().unwrap()), node);
    assert_eq!(second["created_index"], 2);
    let r = cli.invoice("first").unwrap();
    assert!(!r.ok && r.stderr.contains("AlreadyExists"), "{}", r.stderr);

    // With the signer gone the node idles out; a later call brings it back, same node.
    let pid = node_pid(&s, &node).unwrap();
    drop(signer);
    eventually("the idle node stops", || !alive(pid));
    let _signer = cli.spawn(&["run"]).unwrap();
    let third = cli.invoice("third").unwrap().json();
    assert_eq!(payee(third["bolt11"].as_str().unwrap()), node);
    assert_eq!(third["created_index"], 3);
    assert_ne!(node_pid(&s, &node).unwrap(), pid);
}

#[tokio::test]
async fn node_calls_need_a_fresh_valid_signature_from_a_device_of_the_tenant() {
    let s = Scheduler::start(&[]).unwrap();
    let (a, b) = (
        SignerCli::registered(&s).unwrap(),
        SignerCli::registered(&s).unwrap(),
    );
    let (a_id, b_id) = (a.identity(), b.identity());
    let mut sched = tls::scheduler(&s.uri, &a_id).await.unwrap();
    let uri = sched
        .schedule(ScheduleRequest::default())
        .await
        .unwrap()
        .into_inner()
        .grpc_uri;
    let mut node = NodeClient::new(tls::channel(&uri, &a_id).await.unwrap());
    let signer = RequestSigner::new(&a_id.key_pem).unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };

    // Unsigned: refused.
    let st = node.getinfo(GetinfoRequest {}).await.unwrap_err();
    assert_eq!(st.code(), tonic::Code::Unauthenticated, "{st:?}");

    // Signed by A's device: answered.
    let ts = now();
    let info = node
        .getinfo(signer.sign_at(GetinfoRequest {}, ts).unwrap())
        .await
        .expect("a signed call")
        .into_inner();
    assert_eq!(hex::encode(info.id), a.node_id());

    // The same read signed in the same millisecond (gl-client polling): served again.
    node.getinfo(signer.sign_at(GetinfoRequest {}, ts).unwrap())
        .await
        .expect("an identical read");

    // A call with effects signed the same way twice: the second is a replay. (A Pay of
    // something that is no invoice: the first is refused for that, at once.)
    let pay = skylight_proto::cln::PayRequest {
        bolt11: "not an invoice".into(),
        ..Default::default()
    };
    let ts = now();
    let st = node
        .pay(signer.sign_at(pay.clone(), ts).unwrap())
        .await
        .unwrap_err();
    assert_eq!(st.code(), tonic::Code::InvalidArgument, "{st:?}");
    let st = node
        .pay(signer.sign_at(pay, ts).unwrap())
        .await
        .unwrap_err();
    assert_eq!(st.code(), tonic::Code::Unauthenticated, "{st:?}");
    assert!(st.message().contains("replay"), "{st:?}");

    // A stale timestamp.
    let stale = now() - 3_600_000;
    let st = node
        .getinfo(signer.sign_at(GetinfoRequest {}, stale).unwrap())
        .await
        .unwrap_err();
    assert_eq!(st.code(), tonic::Code::Unauthenticated, "{st:?}");

    // A signature that does not match the request (signed for another body).
    let mut req = signer
        .sign_at(
            InvoiceRequest {
                label: "x".into(),
                amount_msat: Some(skylight_proto::cln::AmountOrAny {
                    value: Some(skylight_proto::cln::amount_or_any::Value::Amount(
                        skylight_proto::cln::Amount { msat: 1000 },
                    )),
                }),
                ..Default::default()
            },
            now(),
        )
        .unwrap();
    req.get_mut().label = "y".into();
    let st = node.invoice(req).await.unwrap_err();
    assert_eq!(st.code(), tonic::Code::Unauthenticated, "{st:?}");
    assert!(st.message().contains("glauthsig"), "{st:?}");

    // Signed by B's key (over B's own TLS connection) to A's node: never gets in.
    let b_signer = RequestSigner::new(&b_id.key_pem).unwrap();
    let refused = match tls::channel(&uri, &b_id).await {
        Err(_) => true,
        Ok(ch) => NodeClient::new(ch)
            .getinfo(b_signer.sign(GetinfoRequest {}).unwrap())
            .await
            .is_err(),
    };
    assert!(refused, "tenant B's device must not reach tenant A's node");

    // A's device signing with B's key: the key is not the caller's certificate key.
    let st = node
        .getinfo(b_signer.sign(GetinfoRequest {}).unwrap())
        .await
        .unwrap_err();
    assert_eq!(st.code(), tonic::Code::PermissionDenied, "{st:?}");
}

#[test]
fn a_read_only_device_reads_and_is_refused_every_call_with_effects_naming_its_rune() {
    // Until pairing hands out narrowed runes, the tenant's own seed mints one read-only for
    // this device's key, as the signer would for a paired read-only device.
    let s = Scheduler::start(&[]).unwrap();
    let cli = SignerCli::registered(&s).unwrap();
    let path = cli.dir.join("credentials.gfs");
    let mut creds = skylight_client::creds::load(&path).unwrap();
    let secret = skylight_client::secret::HsmSecret::load(&cli.dir.join("hsm_secret")).unwrap();
    let key = rcgen::KeyPair::from_pem(std::str::from_utf8(&creds.key).unwrap()).unwrap();
    creds.rune = skylight_client::runes::RuneMaster::new(&secret)
        .mint(key.public_key_raw(), &[skylight_client::runes::READ_ONLY])
        .unwrap();
    skylight_client::creds::save(&path, &creds).unwrap();
    let _signer = cli.spawn(&["run"]).unwrap();

    for read in [&["node", "getinfo"][..], &["node", "listfunds"]] {
        eventually(&format!("{read:?} is answered"), || {
            cli.run(read).unwrap().ok
        });
    }
    let refused = |args: &[&str]| {
        let r = cli.run(args).unwrap();
        assert!(
            !r.ok
                && r.stderr.contains("PermissionDenied")
                && r.stderr.contains("rune does not allow"),
            "{args:?}: {}",
            r.stderr
        );
    };
    refused(&["node", "invoice", "--amount-msat", "1000", "--label", "ro"]);
    refused(&["node", "newaddr"]);
    refused(&[
        "node",
        "withdraw",
        "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080",
        "1000",
    ]);
    refused(&["node", "pay", "lnbcrt1anything"]);
}
