//! Outgoing webhooks end to end: the real scheduler, node-hosts and signers, and a real HTTP
//! receiver on loopback (so the scheduler runs with `--webhook-allow-http` and
//! `--webhook-allow-private`, which a test of the refusal leaves out).
//!
//! Signatures are checked by implementations that are not ours: Standard Webhooks' own
//! Python library and Greenlight's documented `gl-signature` check
//! (`interop/verify_webhooks.py`), run by the interpreter `.ci/run` installs them into.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sha2::Digest;
use skylight_test_support::pair::{Pair, Tenant, invoice};
use skylight_test_support::{Received, Scheduler, SignerCli, WebhookReceiver};

/// A scheduler whose webhooks may reach a loopback receiver, retrying quickly.
const LOOPBACK: &[&str] = &[
    "--webhook-allow-http",
    "--webhook-allow-private",
    "--webhook-retry-schedule",
    "200ms,200ms,200ms",
];

/// Long enough for every retry of [`LOOPBACK`]'s schedule to have happened.
const SCHEDULE_DONE: Duration = Duration::from_millis(2_000);

/// `signer-cli webhook <args>`.
fn webhook(cli: &SignerCli, args: &[&str]) -> skylight_test_support::Run {
    let mut all = vec!["webhook"];
    all.extend_from_slice(args);
    cli.run(&all).unwrap()
}

/// Adds a webhook for `who` to `url`: its id and secret.
fn add(who: &Tenant, url: &str) -> (i64, String) {
    let added = webhook(&who.cli, &["add", url]).json();
    (
        added["id"].as_i64().unwrap(),
        added["secret"].as_str().unwrap().to_string(),
    )
}

/// Checks every delivery's two signatures with Standard Webhooks' and Greenlight's own
/// checks, in Python: under `secret` they verify, or, if not `valid`, fail. Says loudly
/// when that interpreter is not here.
fn verify_independently(secret: &str, deliveries: &[Received], valid: bool) {
    let Some(python) = skylight_test_support::interop_python(&["standardwebhooks"]) else {
        eprintln!(
            "standardwebhooks is not installed: the independent signature check did not run \
             (`bash .ci/run` installs it)"
        );
        return;
    };
    let list: Vec<Value> = deliveries
        .iter()
        .map(|d| {
            serde_json::json!({
                "secret": secret,
                "headers": d.headers,
                "body": String::from_utf8(d.body.clone()).unwrap(),
                "valid": valid,
            })
        })
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&list).unwrap()).unwrap();
    let out = Command::new(python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/verify_webhooks.py"))
        .env("DELIVERIES", file.path())
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "independent verification failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The invoice labelled `label` as `who` lists it.
fn listed_invoice(who: &Tenant, label: &str) -> Value {
    who.call(&["listinvoices"])["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["label"] == label)
        .cloned()
        .unwrap()
}

#[test]
fn a_payment_reaches_the_payees_webhook_after_three_500s_under_one_event_id_signed_both_ways_and_a_400_is_given_up()
 {
    let pair = Pair::connected_with(LOOPBACK);
    pair.fund_channel();
    pair.confirm_channel();
    let (a, b) = (&pair.a, &pair.b);

    let flaky = WebhookReceiver::start();
    flaky.answer_with(&[500, 500, 500]);
    let (_, secret) = add(b, &flaky.url());
    let bolt11 = invoice(b, 21_000, "hooked");
    a.call(&["pay", &bolt11]);

    let got = flaky.wait_for(4, Duration::from_secs(60));
    std::thread::sleep(SCHEDULE_DONE);
    let got_all = flaky.received();
    assert_eq!(
        got_all.len(),
        4,
        "three failures and one success: {got_all:?}"
    );
    assert_eq!(
        got.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 500, 500, 200]
    );
    let event_id = got[0].header("webhook-id").to_string();
    for r in &got {
        assert_eq!(
            r.header("webhook-id"),
            event_id,
            "the same event every time"
        );
        assert_eq!(r.json()["event_id"], event_id.as_str());
        assert_eq!(r.body, got[0].body, "the same bytes every time");
        assert_eq!(r.header("x-greenlight-event"), "invoice_payment");
        assert_eq!(r.header("content-type"), "application/json");
    }
    let event = got[3].json();
    let paid = listed_invoice(b, "hooked");
    assert_eq!(event["version"], 1);
    assert_eq!(event["event_type"], "invoice_payment");
    assert_eq!(event["node_id"], pair.b_id.as_str());
    assert_eq!(event["payment_hash"], paid["payment_hash"]);
    assert_eq!(event["amount_msat"], 21_000);
    assert_eq!(event["bolt11"], bolt11.as_str());
    assert_eq!(event["label"], "hooked");
    assert!(event["timestamp"].as_u64().unwrap() > 1_700_000_000);
    let preimage = hex::decode(event["preimage"].as_str().unwrap()).unwrap();
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&preimage)),
        paid["payment_hash"].as_str().unwrap(),
        "the preimage is the payment's"
    );
    verify_independently(&secret, &got, true);

    // The secret rotated: later deliveries verify under the new one only.
    let hooks = webhook(&b.cli, &["list"]).json();
    let flaky_id = hooks["webhooks"][0]["id"].as_i64().unwrap().to_string();
    let rotated = webhook(&b.cli, &["rotate", &flaky_id]).json();
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);

    // A second webhook whose receiver refuses with 400: tried once, then given up and
    // listed for the operator; the first webhook gets the second payment once.
    let refusing = WebhookReceiver::start();
    refusing.answer_with(&[400]);
    add(b, &refusing.url());
    let second = invoice(b, 22_000, "hooked-again");
    a.call(&["pay", &second]);
    let refused = refusing.wait_for(1, Duration::from_secs(60));
    let taken = flaky.wait_for(5, Duration::from_secs(60));
    std::thread::sleep(SCHEDULE_DONE);
    assert_eq!(refusing.received().len(), 1, "a 400 is not retried");
    assert_eq!(flaky.received().len(), 5);
    assert_eq!(taken[4].json()["label"], "hooked-again");
    verify_independently(&new_secret, &taken[4..], true);
    verify_independently(&secret, &taken[4..], false);
    let refused_id = refused[0].header("webhook-id").to_string();
    assert_eq!(
        taken[4].header("webhook-id"),
        refused_id,
        "one event, two webhooks"
    );
    let failed = pair.s.command(&["webhooks", "failed"]).unwrap();
    let listed = String::from_utf8_lossy(&failed.stdout);
    assert!(
        failed.status.success(),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    assert!(
        listed.contains(&refused_id) && listed.contains("HTTP 400 Bad Request"),
        "{listed}"
    );
    assert!(
        !listed.contains(&event_id),
        "the delivered event is not failed: {listed}"
    );
}

#[test]
fn webhooks_into_the_operators_network_are_refused_with_how_to_allow_them_and_tenants_see_only_their_own()
 {
    let s = Scheduler::start(&[]).unwrap();
    let (a, b) = (
        SignerCli::registered(&s).unwrap(),
        SignerCli::registered(&s).unwrap(),
    );
    for (target, says) in [
        ("http://hooks.example.com/x", "--webhook-allow-http"),
        ("https://127.0.0.1:8443/x", "--webhook-allow-private"),
        ("https://10.1.2.3/x", "--webhook-allow-private"),
        ("https://[::1]/x", "--webhook-allow-private"),
        ("https://localhost:8443/x", "--webhook-allow-private"),
        ("https://u:p@1.1.1.1/x", "credentials"),
    ] {
        let r = webhook(&a, &["add", target]);
        assert!(!r.ok, "{target} was taken");
        assert!(r.stderr.contains(says), "{target}: {}", r.stderr);
    }

    // A public target is taken; the other tenant neither sees nor touches it.
    let added = webhook(&a, &["add", "https://1.1.1.1/hook"]).json();
    let id = added["id"].as_i64().unwrap().to_string();
    let listed = webhook(&b, &["list"]).json();
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 0);
    for call in [vec!["delete", id.as_str()], vec!["rotate", id.as_str()]] {
        let r = webhook(&b, &call);
        assert!(
            !r.ok && r.stderr.contains("not one of this node's"),
            "{call:?}: {}",
            r.stderr
        );
    }
    let listed = webhook(&a, &["list"]).json();
    assert_eq!(listed["webhooks"][0]["uri"], "https://1.1.1.1/hook");
    assert!(
        listed["webhooks"][0].get("secret").is_none(),
        "no secret in a list"
    );

    // Twenty at most.
    for i in 1..20 {
        webhook(&a, &["add", &format!("https://1.1.1.1/hook/{i}")]).json();
    }
    let r = webhook(&a, &["add", "https://1.1.1.1/one-too-many"]);
    assert!(!r.ok && r.stderr.contains("20 webhooks"), "{}", r.stderr);

    // An operator who allows them gets loopback and plain http.
    drop((a, b));
    drop(s);
    let s = Scheduler::start(LOOPBACK).unwrap();
    let a = SignerCli::registered(&s).unwrap();
    let receiver = WebhookReceiver::start();
    let r = webhook(&a, &["add", &receiver.url()]);
    assert!(r.ok, "{}", r.stderr);
}

/// The events of `event_type` among what `receiver` got.
fn of_type(receiver: &WebhookReceiver, event_type: &str) -> Vec<Value> {
    receiver
        .received()
        .iter()
        .map(Received::json)
        .filter(|e| e["event_type"] == event_type)
        .collect()
}

#[test]
fn a_payment_to_a_sleeping_signer_raises_signer_needed_once_and_completes_when_the_signer_returns()
{
    let mut args = LOOPBACK.to_vec();
    args.extend(["--node-signer-needed-after-ms", "1000"]);
    let pair = Pair::connected_with(&args);
    pair.fund_channel();
    pair.confirm_channel();
    let (a, b) = (&pair.a, &pair.b);
    let receiver = WebhookReceiver::start();
    add(b, &receiver.url());
    let bolt11 = invoice(b, 30_000, "while-asleep");

    // B's app goes to sleep; its node stays connected to A.
    b.stop_signer();
    std::thread::scope(|scope| {
        let (payer, bolt11) = (&a.cli, &bolt11);
        let paying = scope.spawn(move || payer.run(&["node", "pay", bolt11]).unwrap());
        skylight_test_support::eventually("B's webhook hears that a signer is needed", || {
            !of_type(&receiver, "signer_needed").is_empty()
        });
        let needed = &of_type(&receiver, "signer_needed")[0];
        assert_eq!(needed["node_id"], pair.b_id.as_str());
        assert!(needed["pending_requests"].as_u64().unwrap() > 0, "{needed}");
        // Still asleep a while longer: the same episode raises nothing more.
        std::thread::sleep(Duration::from_secs(3));
        assert_eq!(of_type(&receiver, "signer_needed").len(), 1);
        assert!(!paying.is_finished(), "the payment waits for B's signer");

        // The webhook wakes the app: its signer attaches and the payment completes.
        b.start_signer();
        let paid = paying.join().unwrap();
        assert!(paid.ok, "A's payment failed: {}", paid.stderr);
    });
    skylight_test_support::eventually("B's webhook hears of the payment", || {
        of_type(&receiver, "invoice_payment")
            .iter()
            .any(|e| e["label"] == "while-asleep")
    });
    assert_eq!(
        of_type(&receiver, "signer_needed").len(),
        1,
        "once per episode"
    );
    assert_eq!(
        b.call(&["listpeerchannels"])["channels"][0]["state"],
        "ChanneldNormal"
    );
}

/// What `scheduler webhooks <what>` prints.
fn operator_lists(s: &Scheduler, what: &str) -> String {
    let out = s.command(&["webhooks", what]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn events_survive_a_scheduler_killed_before_delivering_and_a_node_host_killed_before_handing_over_each_delivered_under_one_id()
 {
    // Retries every second for two minutes: the stored delivery must outlast the scenario
    // (however slow the machine) and go soon after the receiver is back.
    let every_second = vec!["1s"; 120].join(",");
    let mut pair = Pair::connected_with(&[
        "--webhook-allow-http",
        "--webhook-allow-private",
        "--webhook-retry-schedule",
        &every_second,
    ]);
    pair.fund_channel();
    pair.confirm_channel();
    // The receiver is down for now: its port refuses connections.
    let mut receiver = WebhookReceiver::start();
    let addr = receiver.addr();
    receiver.stop();
    add(&pair.b, &receiver.url());

    // 1. The scheduler has stored the first payment's event, and tried and failed to
    //    deliver it, when it is killed.
    pair.a
        .call(&["pay", &invoice(&pair.b, 23_000, "stored-then-killed")]);
    skylight_test_support::eventually("the scheduler holds the event, undelivered", || {
        let pending = operator_lists(&pair.s, "pending");
        pending.contains("invoice_payment") && pending.contains("cannot connect")
    });

    // 2. The second payment's event is raised while the scheduler cannot take it (its
    //    events socket is gone), and B's node-host is killed right after the claim, with
    //    the event still in its outbox.
    std::fs::remove_file(pair.s.dir.join("events.sock")).unwrap();
    pair.a
        .call(&["pay", &invoice(&pair.b, 24_000, "raised-then-killed")]);
    skylight_test_support::eventually("B has claimed the payment", || {
        skylight_test_support::pair::paid(&pair.b, "raised-then-killed")
    });
    let b_pid = skylight_test_support::node_pid(&pair.s, &pair.b_id).unwrap();
    let killed = Command::new("kill")
        .args(["-KILL", &b_pid.to_string()])
        .status();
    assert!(killed.unwrap().success());
    skylight_test_support::eventually("B's node-host is gone", || {
        !skylight_test_support::alive(b_pid)
    });

    // Both come back; so does the receiver.
    pair.s.kill_and_restart().unwrap();
    let receiver = WebhookReceiver::start_on(addr);
    pair.b.wake();
    let got = receiver.wait_for(2, Duration::from_secs(60));
    std::thread::sleep(SCHEDULE_DONE);
    let got_all = receiver.received();
    assert_eq!(got_all.len(), 2, "each event delivered once: {got_all:?}");
    let labels: Vec<Value> = got.iter().map(|r| r.json()["label"].clone()).collect();
    assert!(labels.contains(&"stored-then-killed".into()), "{labels:?}");
    assert!(labels.contains(&"raised-then-killed".into()), "{labels:?}");
    assert_ne!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert!(!operator_lists(&pair.s, "pending").contains("invoice_payment"));
}

#[test]
fn a_node_left_behind_the_chain_raises_node_stuck_once_with_its_lag() {
    let mut args = LOOPBACK.to_vec();
    // The node looks for new blocks only every ten minutes: it falls behind at once.
    args.extend(["--node-chain-poll-ms", "600000"]);
    let s = Scheduler::start(&args).unwrap();
    let t = Tenant::new(&s);
    let receiver = WebhookReceiver::start();
    add(&t, &receiver.url());
    let ours = t.call(&["getinfo"])["blockheight"].as_u64().unwrap();
    s.chain(&["mine", "10"]);
    skylight_test_support::eventually("the webhook hears the node is stuck", || {
        !of_type(&receiver, "node_stuck").is_empty()
    });
    let stuck = &of_type(&receiver, "node_stuck")[0];
    assert_eq!(stuck["blockheight"], ours);
    assert_eq!(stuck["headheight"], ours + 10);
    assert_eq!(stuck["lag"], 10);
    // Still behind: nothing more until it has caught up.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(of_type(&receiver, "node_stuck").len(), 1);
}
