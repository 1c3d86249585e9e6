//! What the chain shows of an end-to-end scenario on the embedded chain, for the tests of
//! channels that end on chain: the mempool, blocks mined until something happens, a
//! transaction's fee, a tenant's confirmed outputs, and the claims that brought them.

use serde_json::Value;

use crate::pair::{Tenant, log_count};
use crate::{Scheduler, eventually};

/// Mines up to `max` blocks one at a time until `what` holds, giving the node-hosts a
/// moment after each block (a sweep is built and broadcast once the block reaches them; if
/// it is late, the next block brings it).
pub fn mine_until(s: &Scheduler, what: &str, max: u32, mut cond: impl FnMut() -> bool) {
    for _ in 0..max {
        if wait_briefly(&mut cond) {
            return;
        }
        s.chain(&["mine", "1"]);
    }
    assert!(
        wait_briefly(&mut cond),
        "{what} did not happen within {max} blocks"
    );
}

fn wait_briefly(cond: &mut impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() > until {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The transactions in the mempool.
pub fn mempool(s: &Scheduler) -> Vec<String> {
    let v: Value = serde_json::from_str(&s.chain(&["call", "getrawmempool"])).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// `who`'s confirmed wallet outputs: (txid, sats).
pub fn confirmed_outputs(who: &Tenant) -> Vec<(String, u64)> {
    who.call(&["listfunds"])["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["status"] == "confirmed")
        .map(|o| {
            (
                o["txid"].as_str().unwrap().to_string(),
                o["amount_msat"].as_u64().unwrap() / 1000,
            )
        })
        .collect()
}

/// The sum of `outputs`, in sats.
pub fn total(outputs: &[(String, u64)]) -> u64 {
    outputs.iter().map(|(_, v)| v).sum()
}

/// Transaction `txid` as the chain describes it (`getrawtransaction`, verbose), confirmed
/// or in the mempool.
pub fn tx(s: &Scheduler, txid: &str) -> Value {
    serde_json::from_str(&s.chain(&["call", "getrawtransaction", txid, "true"])).unwrap()
}

/// An output's value in sats, from its description.
fn sats(output: &Value) -> u64 {
    (output["value"].as_f64().unwrap() * 1e8).round() as u64
}

/// The values (sats) of the outputs transaction `t` spends, in input order.
fn spent_values(s: &Scheduler, t: &Value) -> Vec<u64> {
    t["vin"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let prev = tx(s, i["txid"].as_str().unwrap());
            sats(&prev["vout"][i["vout"].as_u64().unwrap() as usize])
        })
        .collect()
}

/// What transaction `t` spent less what it pays.
fn fee_of(s: &Scheduler, t: &Value) -> u64 {
    let paid: u64 = t["vout"].as_array().unwrap().iter().map(sats).sum();
    spent_values(s, t).iter().sum::<u64>() - paid
}

/// The fee a confirmed or pending transaction paid: what it spent less what it pays.
pub fn fee(s: &Scheduler, txid: &str) -> u64 {
    fee_of(s, &tx(s, txid))
}

/// `who` forces the close of its channel with `peer`; returns the commitment's txid once
/// it is in the mempool.
pub fn force_close(s: &Scheduler, who: &Tenant, peer: &str) -> String {
    let closed = who.call(&["close", peer, "--force"]);
    assert_eq!(closed["type"], "unilateral", "{closed}");
    let commitment = closed["txids"][0].as_str().unwrap().to_string();
    eventually("the commitment is in the mempool", || {
        mempool(s).contains(&commitment)
    });
    commitment
}

/// The fees of the transactions that brought `who` its outputs since `before`, each of
/// which must spend only outputs of `from`.
pub fn swept(s: &Scheduler, who: &Tenant, before: &[(String, u64)], from: &[&String]) -> u64 {
    let (fees, spent) = claims(s, who, before, from);
    assert!(!spent.is_empty(), "nothing was swept");
    fees
}

/// The transactions that brought `who` its outputs since `before`, each of which must
/// spend only outputs of `from`: their fees, and the values of the outputs they spent.
pub fn claims(
    s: &Scheduler,
    who: &Tenant,
    before: &[(String, u64)],
    from: &[&String],
) -> (u64, Vec<u64>) {
    let mut txids: Vec<String> = confirmed_outputs(who)
        .into_iter()
        .filter(|o| !before.contains(o))
        .map(|(t, _)| t)
        .collect();
    txids.sort();
    txids.dedup();
    let (mut fees, mut spent) = (0, Vec::new());
    for t in &txids {
        let v = tx(s, t);
        for i in v["vin"].as_array().unwrap() {
            let prev = i["txid"].as_str().unwrap().to_string();
            assert!(from.contains(&&prev), "sweep {t} spends {prev}");
        }
        spent.extend(spent_values(s, &v));
        fees += fee_of(s, &v);
    }
    spent.sort();
    (fees, spent)
}

/// Waits for `who`'s node-host log to say `what`.
pub fn logged(s: &Scheduler, who: &Tenant, what: &str) {
    eventually(&format!("node-host logs {what:?}"), || {
        log_count(s, who, what) > 0
    });
}

/// The transactions of the block at `height` that spend an output of `of`.
pub fn spenders_in_block(s: &Scheduler, height: u64, of: &str) -> Vec<String> {
    let hash = s.chain(&["call", "getblockhash", &height.to_string()]);
    let hash = hash.trim_matches('"');
    let block: Value = serde_json::from_str(&s.chain(&["call", "getblock", hash, "1"])).unwrap();
    block["tx"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .filter(|t| {
            tx(s, t)["vin"]
                .as_array()
                .is_some_and(|ins| ins.iter().any(|i| i["txid"] == of))
        })
        .collect()
}
