//! Whether a transaction may enter the mempool: bitcoind's checks, with its reject codes.

use bitcoin::{Amount, OutPoint, Transaction, TxOut, Weight};

use crate::chain::Chain;
use crate::mempool::{Entry, Mempool};
use crate::params::*;

/// bitcoind's RPC error codes used for transaction rejections.
pub mod codes {
    /// RPC_TRANSACTION_ERROR / RPC_VERIFY_ERROR: missing or spent inputs.
    pub const VERIFY_ERROR: i32 = -25;
    /// RPC_TRANSACTION_REJECTED / RPC_VERIFY_REJECTED: refused by policy or consensus.
    pub const VERIFY_REJECTED: i32 = -26;
    /// RPC_TRANSACTION_ALREADY_IN_CHAIN.
    pub const ALREADY_IN_CHAIN: i32 = -27;
    /// RPC_DESERIALIZATION_ERROR.
    pub const DESERIALIZATION_ERROR: i32 = -22;
}

/// A refusal, as bitcoind words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (code {code})")]
pub struct Reject {
    /// bitcoind's RPC error code.
    pub code: i32,
    /// bitcoind's reject reason.
    pub reason: String,
}

fn rejected(reason: impl Into<String>) -> Reject {
    Reject {
        code: codes::VERIFY_REJECTED,
        reason: reason.into(),
    }
}

/// A coin an input spends, from the chain or the mempool.
struct Coin {
    txout: TxOut,
    /// Height it confirmed at; for mempool coins, the next block's height.
    height: u32,
    coinbase: bool,
}

/// Checks `tx` against the chain tip and mempool; returns the entry to add.
pub fn check(
    chain: &Chain,
    mempool: &Mempool,
    tx: &Transaction,
    min_relay_fee_sat_per_kvb: u64,
    now: u64,
) -> Result<Entry, Reject> {
    let txid = tx.compute_txid();
    if tx.input.is_empty() {
        return Err(rejected("bad-txns-vin-empty"));
    }
    if tx.output.is_empty() {
        return Err(rejected("bad-txns-vout-empty"));
    }
    if tx.is_coinbase() {
        return Err(rejected("coinbase"));
    }
    let weight = tx.weight().to_wu();
    if weight > MAX_STANDARD_TX_WEIGHT {
        return Err(rejected("tx-size"));
    }
    let mut seen = std::collections::HashSet::new();
    if !tx.input.iter().all(|i| seen.insert(i.previous_output)) {
        return Err(rejected("bad-txns-inputs-duplicate"));
    }
    let out_total = tx
        .output
        .iter()
        .try_fold(Amount::ZERO, |acc, o| acc.checked_add(o.value))
        .filter(|t| *t <= Amount::MAX_MONEY)
        .ok_or_else(|| rejected("bad-txns-txouttotal-toolarge"))?;
    if chain.tx_location(&txid).is_some() {
        return Err(Reject {
            code: codes::ALREADY_IN_CHAIN,
            reason: "Transaction already in block chain".into(),
        });
    }

    let next_height = chain.height() + 1;
    let mut coins = Vec::with_capacity(tx.input.len());
    for input in &tx.input {
        let op = input.previous_output;
        if let Some(spender) = mempool.spender(&op) {
            return Err(rejected(format!(
                "txn-mempool-conflict: {op} is already spent by {spender}"
            )));
        }
        let coin = if let Some(u) = chain.utxo(&op) {
            Coin {
                txout: u.txout.clone(),
                height: u.height,
                coinbase: u.coinbase,
            }
        } else if let Some(out) = mempool.output(&op) {
            Coin {
                txout: out.clone(),
                height: next_height,
                coinbase: false,
            }
        } else {
            return Err(Reject {
                code: codes::VERIFY_ERROR,
                reason: format!("bad-txns-inputs-missingorspent: {op} is unknown or spent"),
            });
        };
        if coin.coinbase && next_height - coin.height < COINBASE_MATURITY {
            return Err(rejected(format!(
                "bad-txns-premature-spend-of-coinbase, tried to spend coinbase at depth {}",
                next_height - coin.height
            )));
        }
        coins.push(coin);
    }

    let in_total = coins
        .iter()
        .try_fold(Amount::ZERO, |acc, c| acc.checked_add(c.txout.value))
        .ok_or_else(|| rejected("bad-txns-inputvalues-outofrange"))?;
    if in_total < out_total {
        return Err(rejected(format!(
            "bad-txns-in-belowout, value in ({in_total}) < value out ({out_total})"
        )));
    }
    let fee = in_total - out_total;

    let tip_mtp = chain.median_time_past(chain.height());
    if !is_final(tx, next_height, tip_mtp) {
        return Err(rejected("non-final"));
    }
    if !sequence_locks_hold(chain, tx, &coins, next_height, tip_mtp) {
        return Err(rejected("non-BIP68-final"));
    }

    let vsize = Weight::from_wu(weight).to_vbytes_ceil();
    let min_fee = min_relay_fee_sat_per_kvb * vsize / 1000;
    if fee.to_sat() < min_fee {
        return Err(rejected(format!(
            "min relay fee not met, {} < {min_fee}",
            fee.to_sat()
        )));
    }

    for (i, coin) in coins.iter().enumerate() {
        if coin.txout.script_pubkey.is_p2tr() {
            // Core 25.1's libbitcoinconsensus cannot verify taproot spends.
            return Err(rejected(format!(
                "input {i} spends a taproot output, which this dev chain cannot verify"
            )));
        }
    }
    let spent = |op: &OutPoint| {
        tx.input
            .iter()
            .position(|i| i.previous_output == *op)
            .map(|i| coins[i].txout.clone())
    };
    tx.verify_with_flags(spent, bitcoinconsensus::VERIFY_ALL)
        .map_err(|e| rejected(format!("mandatory-script-verify-flag-failed ({e})")))?;

    Ok(Entry {
        tx: tx.clone(),
        fee,
        vsize,
        weight,
        time: now,
        height: chain.height(),
        seq: 0,
    })
}

/// Absolute locktime (BIP113: times against the median time past).
fn is_final(tx: &Transaction, height: u32, mtp: u32) -> bool {
    let lock = tx.lock_time.to_consensus_u32();
    if lock == 0 {
        return true;
    }
    let passed = if lock < LOCKTIME_THRESHOLD {
        lock < height
    } else {
        lock < mtp
    };
    passed || tx.input.iter().all(|i| i.sequence.0 == u32::MAX)
}

/// BIP68 relative locks, as bitcoind's CalculateSequenceLocks/EvaluateSequenceLocks for a
/// block at `next_height` on top of a tip with median time past `tip_mtp`.
fn sequence_locks_hold(
    chain: &Chain,
    tx: &Transaction,
    coins: &[Coin],
    next_height: u32,
    tip_mtp: u32,
) -> bool {
    if tx.version.0 < 2 {
        return true;
    }
    let mut min_height: i64 = -1;
    let mut min_time: i64 = -1;
    for (input, coin) in tx.input.iter().zip(coins) {
        let seq = input.sequence.0;
        if seq & SEQUENCE_LOCKTIME_DISABLE_FLAG != 0 {
            continue;
        }
        let value = (seq & SEQUENCE_LOCKTIME_MASK) as i64;
        if seq & SEQUENCE_LOCKTIME_TYPE_FLAG != 0 {
            let coin_time = chain.median_time_past(coin.height.saturating_sub(1)) as i64;
            min_time = min_time.max(coin_time + (value << SEQUENCE_LOCKTIME_GRANULARITY) - 1);
        } else {
            min_height = min_height.max(coin.height as i64 + value - 1);
        }
    }
    min_height < next_height as i64 && min_time < tip_mtp as i64
}
