//! Channels that end on chain, between two tenants of one scheduler on the embedded chain:
//! our force close with an HTLC in flight, the HTLC transaction, the delays, and every sat
//! not paid in fees back in the wallets, each signature made by the tenant's own signer;
//! and outputs to sweep that outlive a node-host killed as they come due. (Justice is
//! `justice.rs`.)

use skylight_test_support::onchain::{
    claims, confirmed_outputs, fee, force_close, logged, mempool, mine_until, swept, total, tx,
};
use skylight_test_support::pair::{Pair, height, invoice, paid, synced};
use skylight_test_support::{alive, eventually, node_pid};

#[test]
fn our_force_close_with_an_htlc_in_flight_returns_every_sat_not_paid_in_fees() {
    let pair = Pair::with_channel();
    let (s, a, b, b_id) = (&pair.s, &pair.a, &pair.b, &pair.b_id);
    // B gets a balance of its own first: its output on A's commitment.
    a.call(&["pay", &invoice(b, 10_000_000, "coffee")]);
    eventually("B sees its invoice paid", || paid(b, "coffee"));

    // B takes the next payment but never settles it: A's HTLC stays in flight.
    pair.fault("hold-claims");
    let held = invoice(b, 20_000_000, "held");
    let _payer = a.cli.spawn(&["node", "pay", &held]).unwrap();
    let (mut expiry, mut htlc_sats) = (0, 0);
    eventually("A's HTLC is committed on both sides", || {
        let c = &a.call(&["listpeerchannels"])["channels"][0];
        let htlcs = c["htlcs"].as_array().cloned().unwrap_or_default();
        match htlcs.as_slice() {
            [h] if h["state"] == "SentAddAckRevocation" => {
                expiry = h["expiry"].as_u64().unwrap();
                htlc_sats = h["amount_msat"].as_u64().unwrap() / 1000;
                true
            }
            _ => false,
        }
    });
    // A's balance on its commitment, the fee paid; the HTLC, a payment under way, is not in it.
    let ours = a.call(&["listpeerchannels"])["channels"][0]["to_us_msat"]
        .as_u64()
        .unwrap()
        / 1000;
    let a_before = confirmed_outputs(a);
    let b_before = confirmed_outputs(b);

    // A forces the close: its commitment, signed by A's signer, goes on chain.
    let commitment = force_close(s, a, b_id);
    // Closed, the channel is listed as on chain with what is still to come to A: its
    // funds never vanish from view between the close and the sweep.
    let listed = &a.call(&["listpeerchannels"])["channels"][0];
    assert_eq!(listed["state"], "Onchain", "{listed}");
    assert_eq!(
        listed["to_us_msat"].as_u64().unwrap() / 1000,
        ours,
        "{listed}"
    );
    s.chain(&["mine", "1"]);

    // At the HTLC's expiry A's HTLC-timeout transaction (signed by A's signer) spends it.
    let to_expiry = expiry.saturating_sub(height(s));
    if to_expiry > 0 {
        s.chain(&["mine", &to_expiry.to_string()]);
    }
    synced(s, a);
    let mut htlc_timeout = String::new();
    mine_until(s, "A broadcasts its HTLC-timeout transaction", 5, || {
        // It spends the commitment and is locked until the HTLC's expiry (A's sweep of
        // its own delayed output, due meanwhile, spends the commitment too).
        let spending: Vec<String> = mempool(s)
            .into_iter()
            .filter(|t| {
                let v = tx(s, t);
                v["vin"][0]["txid"] == commitment.as_str() && v["locktime"] == expiry
            })
            .collect();
        match spending.as_slice() {
            [t] => {
                htlc_timeout = t.clone();
                true
            }
            _ => false,
        }
    });
    s.chain(&["mine", "1"]);

    // After the delay (144 blocks, B's choice for A) both delayed outputs (the
    // commitment's and the HTLC transaction's) are swept to A's wallet.
    s.chain(&["mine", "140"]);
    synced(s, a);
    mine_until(s, "A's delayed outputs are swept to its wallet", 20, || {
        total(&confirmed_outputs(a)) + 3_000 > total(&a_before) + ours + htlc_sats
    });
    let sweep_fees = swept(s, a, &a_before, &[&commitment, &htlc_timeout]);
    // What A had in the channel (its commitment's fee already paid from it) and the HTLC
    // came back but for the HTLC transaction's fee and the sweeps'.
    assert_eq!(
        total(&confirmed_outputs(a)),
        total(&a_before) + ours + htlc_sats - fee(s, &htlc_timeout) - sweep_fees,
        "A's wallet holds every sat of its share not paid in fees"
    );
    eprintln!(
        "force close: commitment fee {} sat, HTLC-timeout fee {} sat, A's sweeps {} sat; {} blocks",
        fee(s, &commitment),
        fee(s, &htlc_timeout),
        sweep_fees,
        height(s)
    );
    let b_share = 10_000;
    eventually("B's output is swept to B's wallet", || {
        total(&confirmed_outputs(b)) > total(&b_before)
    });
    let b_fees = swept(s, b, &b_before, &[&commitment]);
    assert_eq!(
        total(&confirmed_outputs(b)),
        total(&b_before) + b_share - b_fees,
        "B's wallet holds its share less the sweep's fee"
    );
    assert!(
        a.call(&["listpeerchannels"])["channels"]
            .as_array()
            .unwrap()
            .is_empty(),
        "the channel is gone"
    );
}

#[test]
fn a_node_host_killed_right_after_outputs_come_due_still_sweeps_them_after_its_restart() {
    let pair = Pair::with_channel();
    let (s, a, b_id) = (&pair.s, &pair.a, &pair.b_id);
    let a_node = a.cli.node_id();
    let log = s.node_dir(&a_node).log();
    let ours = a.call(&["listpeerchannels"])["channels"][0]["to_us_msat"]
        .as_u64()
        .unwrap()
        / 1000;
    let before = confirmed_outputs(a);
    // B is offline (its signer and its node: a node whose signer only sleeps keeps its
    // peers), so B cannot agree to a cooperative close: A forces it.
    pair.b.stop_signer();
    pair.b.stop_node(s);
    eventually("A sees B gone", || {
        a.call(&["listpeerchannels"])["channels"][0]["peer_connected"] == false
    });
    let commitment = force_close(s, a, b_id);
    s.chain(&["mine", "1"]);
    synced(s, a);

    // A's signer goes away too; A's delayed output comes due: the sweeper tracks it on disk
    // but cannot have it signed. Then node-host is killed outright.
    a.stop_signer();
    s.chain(&["mine", "144"]);
    let logged = |what: &str| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(what)
    };
    eventually("A's node-host tracks the output to sweep", || {
        logged("outputs to sweep tracked")
    });
    eventually("and cannot sweep it without the signer", || {
        logged("sweep not signed yet")
    });
    let pid = node_pid(s, &a_node).unwrap();
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    eventually("A's node-host is gone", || !alive(pid));

    // The signer comes back, node-host starts again, and the sweep goes out.
    a.start_signer();
    mine_until(s, "A's output is swept after the restart", 10, || {
        total(&confirmed_outputs(a)) > total(&before)
    });
    let fees = swept(s, a, &before, &[&commitment]);
    assert_eq!(
        total(&confirmed_outputs(a)),
        total(&before) + ours - fees,
        "A's wallet holds its share of the channel less the sweep's fee"
    );
}

#[test]
fn their_force_close_with_htlcs_both_ways_has_our_claims_confirm_and_come_to_our_wallet() {
    let pair = Pair::with_channel();
    let (s, a, b, b_id) = (&pair.s, &pair.a, &pair.b, &pair.b_id);
    a.call(&["pay", &invoice(b, 19_000_000, "coffee")]);
    eventually("B sees its invoice paid", || paid(b, "coffee"));

    // (Each HTLC stays within the 10% of the channel a peer lets be in flight.)
    // Neither side settles: an HTLC from A to B and one from B to A stay in flight.
    pair.fault("hold-claims");
    let to_b = invoice(b, 12_000_000, "to-b");
    let to_a = invoice(a, 9_000_000, "to-a");
    let _a_pays = a.cli.spawn(&["node", "pay", &to_b]).unwrap();
    let _b_pays = b.cli.spawn(&["node", "pay", &to_a]).unwrap();
    let mut expiry_out = 0;
    eventually("both HTLCs are committed on both sides", || {
        let c = &a.call(&["listpeerchannels"])["channels"][0];
        let htlcs = c["htlcs"].as_array().cloned().unwrap_or_default();
        let out = htlcs
            .iter()
            .find(|h| h["direction"] == "out" && h["state"] == "SentAddAckRevocation");
        let inbound = htlcs
            .iter()
            .any(|h| h["direction"] == "in" && h["state"] == "RcvdAddAckRevocation");
        if let (Some(o), true) = (out, inbound) {
            expiry_out = o["expiry"].as_u64().unwrap();
            true
        } else {
            false
        }
    });
    logged(s, a, "fault: leaving the payment unclaimed");
    logged(s, b, "fault: leaving the payment unclaimed");
    let before = confirmed_outputs(a);

    // A's signer is away (its node stays connected, and holds the payment to it); B
    // forces the close.
    a.stop_signer();
    let theirs = force_close(s, b, &a.cli.node_id());
    s.chain(&["mine", "1"]);

    // A's signer returns and A settles the payment to it: with the preimage, A claims that
    // HTLC from B's commitment; after its expiry A takes back its own HTLC; A's balance on
    // B's commitment is swept. Every claim is signed by A's signer.
    pair.fault(&format!("hold-claims {b_id}"));
    a.start_signer();
    synced(s, a);
    mine_until(s, "A claims the HTLC it has the preimage of", 10, || {
        let (_, spent) = claims(s, a, &before, &[&theirs]);
        spent.contains(&9_000)
    });
    let to_expiry = expiry_out.saturating_sub(height(s));
    if to_expiry > 0 {
        s.chain(&["mine", &to_expiry.to_string()]);
    }
    synced(s, a);
    mine_until(
        s,
        "A takes back its own HTLC and sweeps its balance",
        10,
        || {
            let (_, spent) = claims(s, a, &before, &[&theirs]);
            spent.len() == 3
        },
    );
    let (fees, spent) = claims(s, a, &before, &[&theirs]);
    assert!(
        spent.contains(&9_000) && spent.contains(&12_000),
        "A's claims took both HTLCs: {spent:?}"
    );
    let taken: u64 = spent.iter().sum();
    eprintln!("their force close: A took {spent:?} sat from B's commitment for {fees} sat in fees");
    assert_eq!(
        total(&confirmed_outputs(a)),
        total(&before) + taken - fees,
        "every sat A took from B's commitment not paid in fees is in A's wallet"
    );
}
