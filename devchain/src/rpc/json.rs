//! bitcoind's JSON shapes for blocks, headers, transactions and outputs.

use bitcoin::{Address, Amount, Block, BlockHash, Network, Script, Transaction, TxOut};
use serde_json::{Value, json};

use crate::chain::{BlockEntry, Chain};
use crate::mempool::Entry;

/// Amounts as bitcoind prints them: BTC as a number.
pub fn btc(amount: Amount) -> Value {
    json!(amount.to_btc())
}

/// A feerate in BTC per 1000 virtual bytes.
pub fn btc_per_kvb(sat_per_kvb: u64) -> Value {
    btc(Amount::from_sat(sat_per_kvb))
}

/// Chainwork as bitcoind prints it: 64 hex digits.
pub fn chainwork(entry: &BlockEntry) -> String {
    hex::encode(entry.chainwork.to_be_bytes())
}

/// Confirmations of a block: -1 off the active chain.
pub fn confirmations(chain: &Chain, hash: &BlockHash, height: u32) -> i64 {
    if chain.is_active(hash) {
        (chain.height() - height + 1) as i64
    } else {
        -1
    }
}

/// The fields `getblockheader` and `getblock` share.
pub fn header_fields(
    chain: &Chain,
    hash: &BlockHash,
    entry: &BlockEntry,
) -> serde_json::Map<String, Value> {
    let h = &entry.block.header;
    let mut m = serde_json::Map::new();
    m.insert("hash".into(), json!(hash.to_string()));
    m.insert(
        "confirmations".into(),
        json!(confirmations(chain, hash, entry.height)),
    );
    m.insert("height".into(), json!(entry.height));
    m.insert("version".into(), json!(h.version.to_consensus()));
    m.insert(
        "versionHex".into(),
        json!(format!("{:08x}", h.version.to_consensus())),
    );
    m.insert("merkleroot".into(), json!(h.merkle_root.to_string()));
    m.insert("time".into(), json!(h.time));
    m.insert("mediantime".into(), json!(mtp_of(chain, hash, entry)));
    m.insert("nonce".into(), json!(h.nonce));
    m.insert(
        "bits".into(),
        json!(format!("{:08x}", h.bits.to_consensus())),
    );
    m.insert("difficulty".into(), json!(h.difficulty_float()));
    m.insert("chainwork".into(), json!(chainwork(entry)));
    m.insert("nTx".into(), json!(entry.block.txdata.len()));
    if entry.height > 0 {
        m.insert(
            "previousblockhash".into(),
            json!(h.prev_blockhash.to_string()),
        );
    }
    if let Some(next) = chain.next_active(hash) {
        m.insert("nextblockhash".into(), json!(next.to_string()));
    }
    m
}

fn mtp_of(chain: &Chain, hash: &BlockHash, entry: &BlockEntry) -> u32 {
    if chain.is_active(hash) {
        chain.median_time_past(entry.height)
    } else {
        entry.block.header.time
    }
}

/// `getblock` at verbosity 1.
pub fn block(chain: &Chain, hash: &BlockHash, entry: &BlockEntry) -> Value {
    let mut m = header_fields(chain, hash, entry);
    let b: &Block = &entry.block;
    m.insert("size".into(), json!(b.total_size()));
    // weight = 3 × stripped size + total size (BIP141).
    let stripped = (b.weight().to_wu() as usize - b.total_size()) / 3;
    m.insert("strippedsize".into(), json!(stripped));
    m.insert("weight".into(), json!(b.weight().to_wu()));
    m.insert(
        "tx".into(),
        json!(
            b.txdata
                .iter()
                .map(|t| t.compute_txid().to_string())
                .collect::<Vec<_>>()
        ),
    );
    Value::Object(m)
}

/// The `scriptPubKey` object.
pub fn script_pubkey(script: &Script) -> Value {
    let kind = if script.is_p2wpkh() {
        "witness_v0_keyhash"
    } else if script.is_p2wsh() {
        "witness_v0_scripthash"
    } else if script.is_p2tr() {
        "witness_v1_taproot"
    } else if script.is_p2pkh() {
        "pubkeyhash"
    } else if script.is_p2sh() {
        "scripthash"
    } else if script.is_op_return() {
        "nulldata"
    } else {
        "nonstandard"
    };
    let mut m = serde_json::Map::new();
    m.insert("asm".into(), json!(script.to_asm_string()));
    m.insert("hex".into(), json!(hex::encode(script.as_bytes())));
    m.insert("type".into(), json!(kind));
    if let Ok(address) = Address::from_script(script, Network::Regtest) {
        m.insert("address".into(), json!(address.to_string()));
    }
    Value::Object(m)
}

/// One `vout` entry.
pub fn txout(n: usize, out: &TxOut) -> Value {
    json!({ "value": btc(out.value), "n": n, "scriptPubKey": script_pubkey(&out.script_pubkey) })
}

/// `getrawtransaction` verbose, with block facts when confirmed.
pub fn transaction(chain: &Chain, tx: &Transaction, block: Option<&BlockHash>) -> Value {
    let vin: Vec<Value> = tx
        .input
        .iter()
        .map(|i| {
            if tx.is_coinbase() {
                json!({ "coinbase": hex::encode(i.script_sig.as_bytes()), "sequence": i.sequence.0 })
            } else {
                json!({
                    "txid": i.previous_output.txid.to_string(),
                    "vout": i.previous_output.vout,
                    "scriptSig": { "asm": i.script_sig.to_asm_string(), "hex": hex::encode(i.script_sig.as_bytes()) },
                    "txinwitness": i.witness.iter().map(hex::encode).collect::<Vec<_>>(),
                    "sequence": i.sequence.0,
                })
            }
        })
        .collect();
    let mut m = serde_json::Map::new();
    m.insert("txid".into(), json!(tx.compute_txid().to_string()));
    m.insert("hash".into(), json!(tx.compute_wtxid().to_string()));
    m.insert("version".into(), json!(tx.version.0));
    m.insert("size".into(), json!(tx.total_size()));
    m.insert("vsize".into(), json!(tx.vsize()));
    m.insert("weight".into(), json!(tx.weight().to_wu()));
    m.insert("locktime".into(), json!(tx.lock_time.to_consensus_u32()));
    m.insert("vin".into(), json!(vin));
    m.insert(
        "vout".into(),
        json!(
            tx.output
                .iter()
                .enumerate()
                .map(|(n, o)| txout(n, o))
                .collect::<Vec<_>>()
        ),
    );
    m.insert(
        "hex".into(),
        json!(bitcoin::consensus::encode::serialize_hex(tx)),
    );
    if let Some(hash) = block
        && let Some(entry) = chain.entry(hash)
    {
        m.insert("blockhash".into(), json!(hash.to_string()));
        m.insert(
            "confirmations".into(),
            json!(confirmations(chain, hash, entry.height)),
        );
        m.insert("time".into(), json!(entry.block.header.time));
        m.insert("blocktime".into(), json!(entry.block.header.time));
    }
    Value::Object(m)
}

/// A mempool entry as `getrawmempool true` and `getmempoolentry` print it.
pub fn mempool_entry(entry: &Entry, in_mempool: impl Fn(&bitcoin::Txid) -> bool) -> Value {
    let depends: Vec<String> = entry
        .tx
        .input
        .iter()
        .map(|i| i.previous_output.txid)
        .filter(|t| in_mempool(t))
        .map(|t| t.to_string())
        .collect();
    json!({
        "vsize": entry.vsize,
        "weight": entry.weight,
        "time": entry.time,
        "height": entry.height,
        "fees": { "base": btc(entry.fee), "modified": btc(entry.fee) },
        "depends": depends,
        "wtxid": entry.tx.compute_wtxid().to_string(),
        "bip125-replaceable": false,
    })
}
