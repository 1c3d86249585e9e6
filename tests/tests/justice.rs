//! Justice between two tenants of one scheduler on the embedded chain: a counterparty
//! broadcasts a revoked commitment from an old backup of its node-host and device (a VLS
//! signer never signs a revoked commitment, but a restored one believes it current), with
//! no HTLC and with one it claims by its own HTLC transaction; our justice transactions,
//! signed by our own signer, take the whole channel, at both stages.

use skylight_test_support::backup::Backup;
use skylight_test_support::eventually;
use skylight_test_support::onchain::{
    claims, confirmed_outputs, fee, force_close, logged, mine_until, spenders_in_block, total, tx,
};
use skylight_test_support::pair::{Pair, height, invoice, paid, synced};

#[test]
fn a_revoked_commitment_from_an_old_backup_is_punished_and_we_take_the_whole_channel() {
    let pair = Pair::with_channel();
    let (s, a, b) = (&pair.s, &pair.a, &pair.b);
    a.call(&["pay", &invoice(b, 19_000_000, "first")]);
    eventually("B sees the first payment", || paid(b, "first"));
    for (name, who) in [("A", a), ("B", b)] {
        eventually(&format!("the payment is settled on {name}'s side"), || {
            who.call(&["listpeerchannels"])["channels"][0]["htlcs"]
                .as_array()
                .is_some_and(|h| h.is_empty())
        });
    }

    // B backs up its node-host and its device as they are now (no HTLC in flight)...
    let backup = Backup::take(s, b);
    // ...and the channel moves on: the backed-up state is revoked.
    b.wake();
    pair.channel_still_pays("second");

    // With A's signer asleep (A takes no peers), B restores the backup and forces the
    // close with it: its signer, restored too, signs the revoked commitment.
    a.stop_signer();
    backup.restore(s, b);
    b.wake();
    let revoked = force_close(s, b, &a.cli.node_id());
    s.chain(&["mine", "1"]);
    let outputs = tx(s, &revoked)["vout"].as_array().unwrap().len();

    // A wakes: its justice transaction, signed by A's signer, takes B's output, and A
    // sweeps its own: every output of the revoked commitment comes to A.
    let before = confirmed_outputs(a);
    a.start_signer();
    synced(s, a);
    mine_until(
        s,
        "A takes every output of the revoked commitment",
        10,
        || claims(s, a, &before, &[&revoked]).1.len() == outputs,
    );
    let (fees, spent) = claims(s, a, &before, &[&revoked]);
    assert!(
        spent.contains(&19_000),
        "A's justice took B's output: {spent:?}"
    );
    let taken: u64 = spent.iter().sum();
    eprintln!(
        "justice: A took {spent:?} sat (the whole channel less the commitment's fee, {} sat) for {fees} sat in fees",
        fee(s, &revoked)
    );
    assert_eq!(taken + fee(s, &revoked), 200_000, "the whole channel");
    assert_eq!(
        total(&confirmed_outputs(a)),
        total(&before) + taken - fees,
        "every sat of the channel not paid in fees is in A's wallet"
    );
}

#[test]
fn a_revoked_commitment_with_an_htlc_from_an_old_backup_is_punished_at_both_stages() {
    let pair = Pair::with_channel();
    let (s, a, b, b_id) = (&pair.s, &pair.a, &pair.b, &pair.b_id);
    a.call(&["pay", &invoice(b, 19_000_000, "first")]);
    eventually("B sees the first payment", || paid(b, "first"));

    // An HTLC from A that B holds, committed on both sides; then A goes offline (its
    // signer and its node: a node whose signer only sleeps keeps its peers, and would
    // hear) and B settles it: B's monitor has the preimage, A has not heard.
    pair.fault(&format!("hold-claims {b_id}"));
    let payer = a
        .cli
        .spawn(&["node", "pay", &invoice(b, 12_000_000, "held")])
        .unwrap();
    logged(s, b, "fault: leaving the payment unclaimed");
    eventually("A's HTLC is committed on both sides", || {
        a.call(&["listpeerchannels"])["channels"][0]["htlcs"]
            .as_array()
            .is_some_and(|h| h.len() == 1 && h[0]["state"] == "SentAddAckRevocation")
    });
    a.stop_signer();
    // The pay call ends (the payment does not): a stopping node-host lets open calls finish.
    drop(payer);
    a.stop_node(s);
    eventually("B sees A gone", || {
        b.call(&["listpeerchannels"])["channels"][0]["peer_connected"] == false
    });
    pair.fault("");
    logged(s, b, "fault lifted: claiming a payment held");

    // B's backup: an HTLC it can claim with the preimage, in a state about to be revoked.
    let backup = Backup::take(s, b);
    a.start_signer();
    b.wake();
    eventually("B sees the held payment settled", || paid(b, "held"));
    pair.channel_still_pays("after");

    // The cheat: B's commitment from the backup, and its HTLC-success transaction.
    a.stop_signer();
    backup.restore(s, b);
    b.wake();
    let revoked = force_close(s, b, &a.cli.node_id());
    mine_until(s, "B's HTLC-success transaction is mined", 3, || {
        (1..=height(s))
            .rev()
            .take(3)
            .any(|h| !spenders_in_block(s, h, &revoked).is_empty())
    });
    let mut theirs: Vec<String> = Vec::new();
    for h in (1..=height(s)).rev().take(3) {
        theirs.extend(spenders_in_block(s, h, &revoked));
    }

    // A wakes and punishes both stages: every sat of the channel but the fees comes to A.
    let before = confirmed_outputs(a);
    a.start_signer();
    synced(s, a);
    let from: Vec<&String> = std::iter::once(&revoked).chain(theirs.iter()).collect();
    let theirs_fees: u64 = theirs.iter().map(|t| fee(s, t)).sum();
    mine_until(s, "A takes the whole channel", 10, || {
        let (_, spent) = claims(s, a, &before, &from);
        spent.iter().sum::<u64>() + fee(s, &revoked) + theirs_fees == 200_000
    });
    let (fees, spent) = claims(s, a, &before, &from);
    eprintln!(
        "justice at both stages: A took {spent:?} sat for {fees} sat in fees; B's transactions {theirs:?}"
    );
    let taken: u64 = spent.iter().sum();
    assert!(
        spent.contains(&19_000),
        "A's justice took B's output: {spent:?}"
    );
    assert_eq!(
        total(&confirmed_outputs(a)),
        total(&before) + taken - fees,
        "every sat A took is in its wallet"
    );
}
