//! Two tenants of one scheduler, each with its own `signer-cli run`, on the embedded chain:
//! the wallet, peers, a channel, payments both ways, a node-host that misbehaves toward its
//! signer, a restart, a cooperative close, a withdrawal, and the phone pattern (wake, pay,
//! sleep, idle out; ten times), node-hosts stopped mid-dance, and a payee killed before it
//! hears the payer's reply (channel-signer.md §1.5.3). Each scenario starts from the
//! same fixture: two tenants, A's wallet funded, A connected to B (and, for most, a
//! channel from A to B ready to use).

use skylight_test_support::pair::{Pair, invoice, log_count, paid};
use skylight_test_support::{alive, eventually, node_pid};

#[test]
fn the_faucet_funds_a_wallet_and_tenants_connect_over_lightning() {
    let Pair {
        a,
        b,
        b_id,
        faucet_addr: addr,
        ..
    } = &Pair::connected();
    // The faucet paid A's new address; once mined, ListFunds shows it confirmed.
    assert!(addr.starts_with("bcrt1q"), "{addr}");
    let funds = a.call(&["listfunds"]);
    let out = &funds["outputs"][0];
    assert_eq!(out["amount_msat"], 50_000_000_000u64);
    assert_eq!(out["address"], addr.as_str());
    // Another new address is another address.
    assert_ne!(a.call(&["newaddr"])["bech32"], addr.as_str());

    // A connected to B over the Lightning protocol (each side's handshake signed by its own
    // signer); both see the other.
    assert_eq!(a.call(&["getinfo"])["num_peers"], 1);
    let peers = a.call(&["listpeers"]);
    assert_eq!(peers["peers"][0]["id"], b_id.as_str(), "{peers}");
    assert_eq!(peers["peers"][0]["connected"], true);
    assert_eq!(peers["peers"][0]["num_channels"], 0);
    assert!(
        b.address()
            .ends_with(peers["peers"][0]["netaddr"][0].as_str().unwrap())
    );
}

#[test]
fn a_channel_opens_with_commitments_signed_by_both_signers_and_funding_from_the_wallet() {
    let pair = Pair::connected();
    let (a, b) = (&pair.a, &pair.b);
    // The commitments are signed by both signers, and A's signer signs the funding inputs
    // only after B countersigned the first commitment.
    let funding_txid = pair.fund_channel();
    assert_eq!(funding_txid.len(), 64);
    let channel = &a.call(&["listpeerchannels"])["channels"][0];
    assert_eq!(channel["state"], "ChanneldAwaitingLockin");
    assert_eq!(channel["funding_txid"], funding_txid.as_str());
    assert_eq!(channel["opener"], "local");
    assert_eq!(channel["total_msat"], 200_000_000u64);

    pair.confirm_channel();
    let theirs = &b.call(&["listpeerchannels"])["channels"][0];
    assert_eq!(theirs["opener"], "remote");
    assert_eq!(theirs["to_us_msat"], 0);
    let ours = a.call(&["listpeerchannels"])["channels"][0]["to_us_msat"]
        .as_u64()
        .unwrap();
    assert!(
        ours > 190_000_000 && ours < 200_000_000,
        "A holds the channel less the commitment fee: {ours}"
    );
    // The funding spent A's faucet output; the change came back to A's wallet.
    let funds = a.call(&["listfunds"]);
    let outs = funds["outputs"].as_array().unwrap();
    assert!(
        outs.iter().all(|o| o["txid"] != pair.faucet_txid.as_str()),
        "{funds}"
    );
    assert!(
        outs.iter()
            .any(|o| o["txid"] == funding_txid.as_str() && o["status"] == "confirmed"),
        "{funds}"
    );
    assert_eq!(funds["channels"][0]["amount_msat"], 200_000_000u64);
    assert_eq!(a.call(&["listpeers"])["peers"][0]["num_channels"], 1);
}

#[test]
fn payments_flow_both_ways_and_an_invoice_is_paid_once() {
    let pair = Pair::with_channel();
    let (a, b) = (&pair.a, &pair.b);
    // B makes an invoice, A pays it: A's signer approves it because A's signed Pay names
    // it, and every commitment on both sides is signed by its own signer.
    let bolt11 = b.call(&[
        "invoice",
        "--amount-msat",
        "10000000",
        "--label",
        "coffee",
        "--description",
        "a coffee",
    ])["bolt11"]
        .as_str()
        .unwrap()
        .to_string();
    let paid_a = a.call(&["pay", &bolt11]);
    assert_eq!(paid_a["amount_msat"], 10_000_000);
    let pays = a.call(&["listpays"]);
    assert_eq!(pays["pays"][0]["status"], "complete", "{pays}");
    assert_eq!(pays["pays"][0]["preimage"], paid_a["payment_preimage"]);
    eventually("B sees its invoice paid", || paid(b, "coffee"));
    let invoice_b = &b.call(&["listinvoices"])["invoices"][0];
    assert_eq!(invoice_b["amount_received_msat"], 10_000_000);
    assert_eq!(invoice_b["label"], "coffee");

    // Paying the same invoice twice is refused by the node.
    let r = a.cli.run(&["node", "pay", &bolt11]).unwrap();
    assert!(!r.ok && r.stderr.contains("paid already"), "{}", r.stderr);

    // B pays A back.
    let back = invoice(a, 4_000_000, "change");
    b.call(&["pay", &back]);
    eventually("A sees B's payment", || paid(a, "change"));
    let theirs = b.call(&["listpeerchannels"])["channels"][0]["to_us_msat"]
        .as_u64()
        .unwrap();
    assert_eq!(theirs, 6_000_000, "B holds 10,000 - 4,000 sat");
}

#[test]
fn a_node_host_that_withholds_alters_or_forges_the_signed_pay_cannot_pay() {
    let pair = Pair::with_channel();
    let (a, b) = (&pair.a, &pair.b);
    // A's signer refuses the invoice with its reason, the call ends with it, and no HTLC
    // is left in the channel on either side.
    let a_before = a.call(&["listpeerchannels"])["channels"][0]["to_us_msat"].clone();
    let pays_before = a.call(&["listpays"])["pays"].as_array().unwrap().len();
    let unasked = invoice(b, 2_000_000, "unasked");
    for (fault, reason) in [
        (
            "drop-signed /cln.Node/Pay",
            "no Pay request signed by a device of this node names this invoice",
        ),
        (
            "alter-signed /cln.Node/Pay",
            "the Pay request naming this invoice counts for nothing: it does not verify \
             against its device signature",
        ),
        // Signed by node-host's own key: it verifies, but no rune of the seed names that
        // key, and only the seed can mint one.
        (
            "forge-signed /cln.Node/Pay",
            "the Pay request naming this invoice counts for nothing: its rune does not allow it",
        ),
    ] {
        pair.fault(fault);
        let r = a.cli.run(&["node", "pay", &unasked]).unwrap();
        assert!(
            !r.ok && r.stderr.contains("PermissionDenied") && r.stderr.contains(reason),
            "{fault}: {}",
            r.stderr
        );
    }
    pair.fault("");
    for (who, t) in [("A", a), ("B", b)] {
        let c = &t.call(&["listpeerchannels"])["channels"][0];
        assert_eq!(c["htlcs"], serde_json::json!([]), "{who} has no HTLC: {c}");
    }
    assert_eq!(
        a.call(&["listpeerchannels"])["channels"][0]["to_us_msat"],
        a_before
    );
    let invoices = b.call(&["listinvoices"]);
    let unpaid = invoices["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["label"] == "unasked")
        .unwrap();
    assert_eq!(unpaid["status"], "unpaid", "{invoices}");
    assert_eq!(
        a.call(&["listpays"])["pays"].as_array().unwrap().len(),
        pays_before,
        "a refused payment never started"
    );
}

#[test]
fn a_stopped_node_host_comes_back_with_its_channel_and_payments() {
    let pair = Pair::with_channel();
    let (s, a, b) = (&pair.s, &pair.a, &pair.b);
    let before = invoice(b, 1_000_000, "before-restart");
    a.call(&["pay", &before]);
    eventually("B sees the payment made before A's restart", || {
        paid(b, "before-restart")
    });

    // A's node-host is stopped (as the scheduler's preemption stops it) and comes back on
    // the next call: it reads its channel back, reconnects to B, and the channel works.
    let a_node = a.cli.node_id();
    let pid = node_pid(s, &a_node).unwrap();
    std::process::Command::new("kill")
        .arg(pid.to_string())
        .status()
        .unwrap();
    eventually("A's node-host stops", || !alive(pid));
    eventually("A's channel is back and connected", || {
        a.try_call(&["listpeerchannels"]).is_some_and(|c| {
            c["channels"][0]["peer_connected"] == true
                && c["channels"][0]["state"] == "ChanneldNormal"
        })
    });
    assert_ne!(node_pid(s, &a_node).unwrap(), pid);
    let again = invoice(b, 1_000_000, "after-restart");
    a.call(&["pay", &again]);
    eventually("B sees the payment made after A's restart", || {
        paid(b, "after-restart")
    });
    assert_eq!(
        a.call(&["listpays"])["pays"].as_array().unwrap().len(),
        2,
        "A's payments survive the restart"
    );
}

#[test]
fn a_cooperative_close_returns_each_share() {
    let pair = Pair::with_channel();
    let (s, a, b, b_id) = (&pair.s, &pair.a, &pair.b, &pair.b_id);
    let coffee = invoice(b, 10_000_000, "coffee");
    a.call(&["pay", &coffee]);
    eventually("B sees its invoice paid", || paid(b, "coffee"));

    // A cooperative close is signed by both signers and returns each side's balance to
    // its own wallet.
    let closed = a.call(&["close", b_id]);
    assert_eq!(closed["type"], "mutual");
    let close_txid = closed["txids"][0].as_str().unwrap().to_string();
    s.chain(&["mine", "1"]);
    for (who, t, least) in [("A", a, 180_000_000u64), ("B", b, 10_000_000u64)] {
        eventually(
            &format!("{who}'s wallet holds its share of the channel"),
            || {
                t.call(&["listfunds"])["outputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|o| {
                        o["txid"] == close_txid.as_str()
                            && o["status"] == "confirmed"
                            && o["amount_msat"].as_u64().unwrap() + 2_000_000 >= least
                    })
            },
        );
    }
    // Until the close is deep enough not to be undone, the channel is listed as on chain
    // (as CLN does); then it is gone.
    assert_eq!(
        a.call(&["listpeerchannels"])["channels"][0]["state"],
        "Onchain"
    );
    s.chain(&["mine", "5"]);
    eventually("the channel is gone", || {
        a.call(&["listpeerchannels"])["channels"]
            .as_array()
            .unwrap()
            .is_empty()
    });
}

#[test]
fn a_withdrawal_is_signed_only_to_the_destination_a_device_asked_for() {
    let pair = Pair::connected();
    let (s, a, b) = (&pair.s, &pair.a, &pair.b);
    // A withdraws to an address of B's: A's signer signs it because A's signed Withdraw
    // names that destination and amount.
    let to_b = b.call(&["newaddr"])["bech32"].as_str().unwrap().to_string();
    // First with A's node-host withholding that signed request: the destination is then
    // one nobody asked for, and A's signer refuses to sign.
    // And again with it signed anew by a key of node-host's own: no rune names that key.
    for fault in [
        "drop-signed /cln.Node/Withdraw",
        "forge-signed /cln.Node/Withdraw",
    ] {
        pair.fault(fault);
        let r = a
            .cli
            .run(&["node", "withdraw", &to_b, "30000", "--feerate-perkw", "500"])
            .unwrap();
        assert!(
            !r.ok
                && r.stderr.contains("PermissionDenied")
                && r.stderr.contains("unapproved destination"),
            "{fault}: {}",
            r.stderr
        );
    }
    pair.fault("");
    assert_eq!(
        s.chain(&["call", "getrawmempool"]).trim(),
        "[]",
        "no refused withdrawal reached the chain"
    );
    // Then as asked: signed, and the refused attempt left no input reserved.
    let sent = a.call(&["withdraw", &to_b, "30000", "--feerate-perkw", "500"]);
    let sent_txid = sent["txid"].as_str().unwrap().to_string();
    s.chain(&["mine", "1"]);
    eventually("B's wallet sees the withdrawal", || {
        b.call(&["listfunds"])["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["txid"] == sent_txid.as_str() && o["amount_msat"] == 30_000_000)
    });
}

#[test]
fn paying_back_at_once_after_being_paid_finds_a_route() {
    let pair = Pair::with_channel();
    let (a, b) = (&pair.a, &pair.b);
    // As a new user would: B is paid, and pays back at once. The channel's state may still
    // be settling the first payment (its capacity momentarily taken); the node waits for it
    // within the payment's retry time rather than failing with no route.
    let back = invoice(a, 3_000_000, "back");
    let coffee = invoice(b, 10_000_000, "coffee");
    a.call(&["pay", &coffee]);
    let r = b.cli.run(&["node", "pay", &back]).unwrap();
    assert!(r.ok, "paying back at once: {}", r.stderr);
    eventually("A sees B's payment", || paid(a, "back"));
    eventually("B sees A's payment", || paid(b, "coffee"));
}

#[test]
fn the_phone_pattern_wake_pay_sleep_ten_times_keeps_the_channel_open() {
    // A phone app: wake the signer, pay, let the signer sleep at once, the node-host idles
    // out; again. No round may cost the channel.
    let pair = Pair::connected_with(&["--node-idle-timeout", "2"]);
    pair.fund_channel();
    pair.confirm_channel();
    let (s, a, b) = (&pair.s, &pair.a, &pair.b);
    let a_node = a.cli.node_id();
    for round in 0..10 {
        let label = format!("phone-{round}");
        let bolt11 = invoice(b, 100_000, &label);
        if round > 0 {
            a.start_signer();
        }
        // A Pay issued during the wake-up waits for the channel to be back.
        a.call(&["pay", &bolt11]);
        a.stop_signer();
        eventually(&format!("B sees round {round}'s payment"), || {
            paid(b, &label)
        });
        let pid = node_pid(s, &a_node).unwrap();
        eventually(
            &format!("A's node-host idles out after round {round}"),
            || !alive(pid),
        );
    }
    a.start_signer();
    pair.channel_still_pays("after-the-rounds");
}

#[test]
fn a_node_host_stopped_mid_dance_by_sigterm_or_sigkill_resumes_it_with_the_next_signer() {
    // Pay, take the signer away at once (the commitment dance that settles the HTLC still
    // needs it), and stop the node-host right then: gracefully, or not at all gracefully.
    let pair = Pair::with_channel();
    let (s, a, b) = (&pair.s, &pair.a, &pair.b);
    let a_node = a.cli.node_id();
    for (round, signal) in ["-TERM", "-KILL", "-TERM", "-KILL"].iter().enumerate() {
        let label = format!("stopped-{round}");
        let bolt11 = invoice(b, 100_000, &label);
        if round > 0 {
            a.start_signer();
        }
        a.call(&["pay", &bolt11]);
        a.stop_signer();
        let pid = node_pid(s, &a_node).unwrap();
        std::process::Command::new("kill")
            .args([*signal, &pid.to_string()])
            .status()
            .unwrap();
        eventually(&format!("A's node-host is gone ({signal})"), || !alive(pid));
        eventually(&format!("B sees round {round}'s payment"), || {
            paid(b, &label)
        });
    }
    a.start_signer();
    pair.channel_still_pays("after-the-stops");
}

#[test]
fn a_payee_killed_before_it_hears_the_payers_reply_has_the_resent_commitment_validated_by_its_signer()
 {
    // channel-signer.md §1.5.3, made deterministic: B settles a payment (its fulfill and
    // commitment_signed go out), A's reply (revoke_and_ack, commitment_signed) is held on
    // the wire, and B is killed. After B's restart A sends that commitment again, before B
    // has signed anything: B's new signer instances must still have it validated by the
    // signer. Upstream's client skipped the validation there, the signer then refused the
    // next point, and the channel was lost.
    let pair = Pair::with_channel_through_proxy();
    let (s, a, b) = (&pair.s, &pair.a, &pair.b);
    let proxy = pair.proxy.as_ref().unwrap();
    let b_node = b.cli.node_id();
    pair.fault(&format!("hold-claims {b_node}"));
    // Enough that B can pay back above its channel reserve afterwards.
    let bolt11 = invoice(b, 10_000_000, "reply-held");
    let a_cli = &a.cli;
    std::thread::scope(|scope| {
        let paying = scope.spawn(|| a_cli.run(&["node", "pay", &bolt11]).unwrap());
        eventually("B holds the payment unclaimed", || {
            log_count(s, b, "leaving the payment unclaimed") > 0
        });
        proxy.hold_toward_target(true);
        pair.fault("");
        let paid = paying.join().unwrap();
        assert!(paid.ok, "A's payment: {}", paid.stderr);
    });
    // A had the preimage with B's fulfill; what it sent B after that stays on the wire.
    eventually("A's reply to B's commitment is held", || proxy.held() > 0);
    let pid = node_pid(s, &b_node).unwrap();
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    eventually("B's node-host is gone", || !alive(pid));
    proxy.hold_toward_target(false);
    b.wake();
    eventually("B has its invoice paid", || paid(b, "reply-held"));
    pair.channel_still_pays("after-the-resend");
    // And the other way, which needs B's next points and secrets from its signer.
    let back = invoice(a, 50_000, "back-after-the-resend");
    b.call(&["pay", &back]);
    eventually("A sees B's payment", || paid(a, "back-after-the-resend"));
    assert_eq!(
        log_count(s, b, "the signer refused"),
        0,
        "B's signer refused nothing"
    );
}
