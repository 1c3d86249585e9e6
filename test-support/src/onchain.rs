//! What the chain shows of an end-to-end scenario on the embedded chain, for the tests of
//! channels that end on chain: the mempool, blocks mined until something happens, a
//! transaction's fee, a tenant's confirmed outputs, and the claims that brought them.

use serde_json::Value;

use crate::pair::Tenant;
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

/// The fee a confirmed or pending transaction paid: what it spent less what it pays.
pub fn fee(s: &Scheduler, txid: &str) -> u64 {
    let tx = |id: &str| -> Value {
        serde_json::from_str(&s.chain(&["call", "getrawtransaction", id, "true"])).unwrap()
    };
    let sats = |v: &Value| (v["value"].as_f64().unwrap() * 1e8).round() as u64;
    let t = tx(txid);
    let spent: u64 = t["vin"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let prev = tx(i["txid"].as_str().unwrap());
            sats(&prev["vout"][i["vout"].as_u64().unwrap() as usize])
        })
        .sum();
    let paid: u64 = t["vout"].as_array().unwrap().iter().map(sats).sum();
    spent - paid
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
        let v: Value =
            serde_json::from_str(&s.chain(&["call", "getrawtransaction", t, "true"])).unwrap();
        for i in v["vin"].as_array().unwrap() {
            let prev = i["txid"].as_str().unwrap().to_string();
            assert!(from.contains(&&prev), "sweep {t} spends {prev}");
            let p: Value =
                serde_json::from_str(&s.chain(&["call", "getrawtransaction", &prev, "true"]))
                    .unwrap();
            let out = &p["vout"][i["vout"].as_u64().unwrap() as usize];
            spent.push((out["value"].as_f64().unwrap() * 1e8).round() as u64);
        }
        fees += fee(s, t);
    }
    spent.sort();
    (fees, spent)
}

/// Waits for `who`'s node-host log to say `what`.
pub fn logged(s: &Scheduler, who: &Tenant, what: &str) {
    let log = s.node_dir(&who.cli.node_id()).log();
    eventually(&format!("node-host logs {what:?}"), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(what)
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
            let v: Value =
                serde_json::from_str(&s.chain(&["call", "getrawtransaction", t, "true"])).unwrap();
            v["vin"]
                .as_array()
                .is_some_and(|ins| ins.iter().any(|i| i["txid"] == of))
        })
        .collect()
}
