//! The dev chain refuses what bitcoind refuses, with bitcoind's codes and messages.

use std::str::FromStr;

use bitcoin::{Amount, OutPoint, Sequence, Txid, absolute};
use serde_json::json;

mod common;
use common::*;

#[tokio::test]
async fn refusals_carry_bitcoinds_codes() {
    let r = start(101).await;
    let key = Key::new();
    let sink = Key::new().address.script_pubkey();
    let fee = Amount::from_sat(500);

    // An invalid script: signed by the wrong key.
    let (prev, _) = funded(&r, &key, 1.0).await;
    let forged = key.spend(
        (prev, Amount::from_btc(1.0).unwrap()),
        sink.clone(),
        fee,
        2,
        Sequence::MAX,
        &Key::new().secret,
    );
    let e = refusal(&r.client, "sendrawtransaction", &[hex(&forged)]).await;
    assert!(e.contains("(-26)") && e.contains("script-verify"), "{e}");

    // A double spend against the mempool, then against the chain.
    let spend = key.spend(
        (prev, Amount::from_btc(1.0).unwrap()),
        sink.clone(),
        fee,
        2,
        Sequence::MAX,
        &key.secret,
    );
    call(&r.client, "sendrawtransaction", &[hex(&spend)]).await;
    let other = key.spend(
        (prev, Amount::from_btc(1.0).unwrap()),
        Key::new().address.script_pubkey(),
        fee * 2,
        2,
        Sequence::MAX,
        &key.secret,
    );
    let e = refusal(&r.client, "sendrawtransaction", &[hex(&other)]).await;
    assert!(
        e.contains("(-26)") && e.contains("txn-mempool-conflict"),
        "{e}"
    );
    mine(&r.client, 1, &Key::new().address).await;
    let e = refusal(&r.client, "sendrawtransaction", &[hex(&other)]).await;
    assert!(e.contains("(-25)") && e.contains("missingorspent"), "{e}");

    // An immature coinbase.
    mine(&r.client, 1, &key.address).await;
    let tip = call(&r.client, "getbestblockhash", &[]).await;
    let block = call(&r.client, "getblock", &[tip.clone(), json!(1)]).await;
    let coinbase = Txid::from_str(block["tx"][0].as_str().unwrap()).unwrap();
    let reward = Amount::from_btc(
        call(
            &r.client,
            "gettxout",
            &[json!(coinbase.to_string()), json!(0)],
        )
        .await["value"]
            .as_f64()
            .unwrap(),
    )
    .unwrap();
    let early = key.spend(
        (OutPoint::new(coinbase, 0), reward),
        sink.clone(),
        fee,
        2,
        Sequence::MAX,
        &key.secret,
    );
    let e = refusal(&r.client, "sendrawtransaction", &[hex(&early)]).await;
    assert!(
        e.contains("(-26)") && e.contains("premature-spend-of-coinbase"),
        "{e}"
    );
    mine(&r.client, 99, &Key::new().address).await;
    call(&r.client, "sendrawtransaction", &[hex(&early)]).await;

    // BIP68: a relative lock of 10 blocks on an output confirmed in the last block.
    let (fresh, amount) = funded(&r, &key, 0.5).await;
    let locked = key.spend(
        (fresh, amount),
        sink.clone(),
        fee,
        2,
        Sequence::from_height(10),
        &key.secret,
    );
    let e = refusal(&r.client, "sendrawtransaction", &[hex(&locked)]).await;
    assert!(e.contains("(-26)") && e.contains("non-BIP68-final"), "{e}");
    mine(&r.client, 8, &Key::new().address).await;
    let e = refusal(&r.client, "sendrawtransaction", &[hex(&locked)]).await;
    assert!(e.contains("non-BIP68-final"), "one block short: {e}");
    mine(&r.client, 1, &Key::new().address).await;
    call(&r.client, "sendrawtransaction", &[hex(&locked)]).await;
    // Version 1 transactions ignore sequence locks.
    let (fresh, amount) = funded(&r, &key, 0.25).await;
    let v1 = key.spend(
        (fresh, amount),
        sink.clone(),
        fee,
        1,
        Sequence::from_height(10),
        &key.secret,
    );
    call(&r.client, "sendrawtransaction", &[hex(&v1)]).await;

    // An absolute locktime (by height) five blocks ahead: not final until the next block's
    // height passes it.
    let (fresh, amount) = funded(&r, &key, 0.2).await;
    let height = call(&r.client, "getblockcount", &[])
        .await
        .as_u64()
        .unwrap() as u32;
    let lock = absolute::LockTime::from_height(height + 5).unwrap();
    let later = key.spend_locked(
        (fresh, amount),
        sink.clone(),
        fee,
        2,
        Sequence::ENABLE_LOCKTIME_NO_RBF,
        &key.secret,
        lock,
    );
    let e = refusal(&r.client, "sendrawtransaction", &[hex(&later)]).await;
    assert!(e.contains("(-26)") && e.contains("non-final"), "{e}");
    mine(&r.client, 4, &Key::new().address).await;
    let e = refusal(&r.client, "sendrawtransaction", &[hex(&later)]).await;
    assert!(
        e.contains("non-final"),
        "the next block's height equals the lock: {e}"
    );
    mine(&r.client, 1, &Key::new().address).await;
    call(&r.client, "sendrawtransaction", &[hex(&later)]).await;

    // Below the minimum relay fee; garbage that is no transaction.
    let (fresh, amount) = funded(&r, &key, 0.1).await;
    let cheap = key.spend(
        (fresh, amount),
        sink.clone(),
        Amount::from_sat(10),
        2,
        Sequence::MAX,
        &key.secret,
    );
    let e = refusal(&r.client, "sendrawtransaction", &[hex(&cheap)]).await;
    assert!(e.contains("(-26)") && e.contains("min relay fee"), "{e}");
    let e = refusal(&r.client, "sendrawtransaction", &[json!("00ff")]).await;
    assert!(e.contains("(-22)"), "{e}");
}
