//! A reorg below the signers' tips, between two tenants with a channel on the embedded
//! chain: the blocks the signers saw are invalidated and others mined in their place; the
//! node-hosts unwind them from their signers' chains, and payments and a cooperative close
//! go on, signed by signers that follow the new branch.

use skylight_test_support::eventually;
use skylight_test_support::pair::{Pair, height, invoice, log_count, paid, synced};

#[test]
fn after_a_reorg_below_the_signers_tips_a_payment_and_a_cooperative_close_succeed() {
    let pair = Pair::with_channel();
    let (s, a, b, b_id) = (&pair.s, &pair.a, &pair.b, &pair.b_id);
    a.call(&["pay", &invoice(b, 10_000_000, "before")]);
    eventually("B sees the first payment", || paid(b, "before"));

    // Two blocks both signers take in.
    let fed = |who| log_count(s, who, "the signer's chain caught up");
    let (a_fed, b_fed) = (fed(a), fed(b));
    let mined = s.chain(&["mine", "2"]);
    let first = mined.lines().next().unwrap().to_string();
    for (name, who, before) in [("A", a, a_fed), ("B", b, b_fed)] {
        eventually(&format!("{name}'s signer takes in the two blocks"), || {
            fed(who) > before
        });
    }
    let tip = height(s);

    // They are replaced: invalidated, and two others mined in their place (paying
    // elsewhere, so they are other blocks).
    s.chain(&["call", "invalidateblock", &first]);
    assert_eq!(height(s), tip - 2);
    let elsewhere = a.call(&["newaddr"])["bech32"].as_str().unwrap().to_string();
    s.chain(&["mine", "2", "--address", &elsewhere]);
    assert_eq!(height(s), tip);
    for (name, who) in [("A", a), ("B", b)] {
        eventually(
            &format!("{name}'s node-host unwinds its signer's chain"),
            || log_count(s, who, "reorg: block removed from the signer's chain") == 2,
        );
        synced(s, who);
    }

    // The new branch is what the signers go on with.
    a.call(&["pay", &invoice(b, 20_000_000, "after")]);
    eventually("B sees the payment after the reorg", || paid(b, "after"));
    let closed = a.call(&["close", b_id]);
    assert_eq!(closed["type"], "mutual", "{closed}");
    let close_txid = closed["txids"][0].as_str().unwrap().to_string();
    s.chain(&["mine", "1"]);
    eventually("A's share of the channel is in its wallet", || {
        a.call(&["listfunds"])["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["txid"] == close_txid.as_str() && o["status"] == "confirmed")
    });
}
