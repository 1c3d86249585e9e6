//! The RPC methods: bitcoind's names, parameters, results and error codes.

use std::str::FromStr;

use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::{Address, Amount, BlockHash, Network, OutPoint, Transaction, Txid};
use serde_json::{Value, json};

use super::codes::*;
use super::{RpcError, json as shape};
use crate::policy::codes as tx_codes;
use crate::{DevChain, Error};

/// The most blocks one `generatetoaddress` mines.
const MAX_GENERATE: u64 = 10_000;

type Result<T> = std::result::Result<T, RpcError>;

/// Runs `method` with positional `params`.
pub fn dispatch(chain: &DevChain, method: &str, params: &[Value]) -> Result<Value> {
    match method {
        "getblockchaininfo" => getblockchaininfo(chain),
        "getblockcount" => Ok(json!(chain.lock().chain.height())),
        "getbestblockhash" => Ok(json!(chain.lock().chain.tip().0.to_string())),
        "getblockhash" => getblockhash(chain, params),
        "getblockheader" => getblockheader(chain, params),
        "getblock" => getblock(chain, params),
        "gettxout" => gettxout(chain, params),
        "getrawtransaction" => getrawtransaction(chain, params),
        "sendrawtransaction" => sendrawtransaction(chain, params),
        "testmempoolaccept" => testmempoolaccept(chain, params),
        "estimatesmartfee" => estimatesmartfee(chain, params),
        "getmempoolinfo" => getmempoolinfo(chain),
        "getrawmempool" => getrawmempool(chain, params),
        "getmempoolentry" => getmempoolentry(chain, params),
        "getnetworkinfo" => Ok(json!({
            "version": 250100, "subversion": "/Skylight devchain/", "protocolversion": 70016,
            "connections": 0, "networkactive": true, "relayfee": shape::btc_per_kvb(chain.config().min_relay_fee_sat_per_kvb),
            "incrementalfee": shape::btc_per_kvb(1000), "warnings": "",
        })),
        "getnewaddress" => Ok(json!(chain.lock().faucet.address.to_string())),
        "generatetoaddress" => generatetoaddress(chain, params),
        "sendtoaddress" => sendtoaddress(chain, params),
        "invalidateblock" => invalidateblock(chain, params),
        _ => Err(RpcError::new(METHOD_NOT_FOUND, "Method not found")),
    }
}

fn param<'a>(params: &'a [Value], i: usize, name: &str) -> Result<&'a Value> {
    params
        .get(i)
        .filter(|v| !v.is_null())
        .ok_or_else(|| RpcError::new(MISC_ERROR, format!("missing parameter {name}")))
}

fn str_param<'a>(params: &'a [Value], i: usize, name: &str) -> Result<&'a str> {
    param(params, i, name)?
        .as_str()
        .ok_or_else(|| RpcError::new(TYPE_ERROR, format!("{name} must be a string")))
}

fn hash_param<T: FromStr>(params: &[Value], i: usize, name: &str) -> Result<T> {
    let s = str_param(params, i, name)?;
    if s.len() != 64 {
        return Err(RpcError::new(
            INVALID_PARAMETER,
            format!("{name} must be of length 64 (not {}, for '{s}')", s.len()),
        ));
    }
    T::from_str(s).map_err(|_| {
        RpcError::new(
            INVALID_PARAMETER,
            format!("{name} must be hexadecimal string (not '{s}')"),
        )
    })
}

fn int_param(params: &[Value], i: usize, name: &str) -> Result<i64> {
    param(params, i, name)?
        .as_i64()
        .ok_or_else(|| RpcError::new(TYPE_ERROR, format!("{name} must be an integer")))
}

/// A verbosity that may be a bool or a number, with a default.
fn verbosity(params: &[Value], i: usize, default: i64) -> Result<i64> {
    match params.get(i) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b as i64),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| RpcError::new(TYPE_ERROR, "verbosity must be an integer")),
        Some(_) => Err(RpcError::new(
            TYPE_ERROR,
            "verbosity must be a number or boolean",
        )),
    }
}

fn address_param(params: &[Value], i: usize) -> Result<Address> {
    let s = str_param(params, i, "address")?;
    Address::from_str(s)
        .ok()
        .and_then(|a| a.require_network(Network::Regtest).ok())
        .ok_or_else(|| RpcError::new(INVALID_ADDRESS_OR_KEY, format!("Invalid address: {s}")))
}

fn chain_error(e: Error) -> RpcError {
    match e {
        Error::Rejected(r) => RpcError::new(r.code, r.reason),
        Error::Faucet(f @ crate::faucet::FaucetError::InsufficientFunds { .. }) => {
            RpcError::new(INSUFFICIENT_FUNDS, f.to_string())
        }
        Error::Faucet(f) => RpcError::new(TYPE_ERROR, f.to_string()),
        Error::BlockNotFound => RpcError::new(INVALID_ADDRESS_OR_KEY, "Block not found"),
        Error::Invalid(m) => RpcError::new(INVALID_PARAMETER, m),
        Error::Store(s) => RpcError::new(DATABASE_ERROR, s.to_string()),
    }
}

fn getblockchaininfo(chain: &DevChain) -> Result<Value> {
    let state = chain.lock();
    let c = &state.chain;
    let (tip, height) = c.tip();
    let entry = c.tip_entry();
    Ok(json!({
        "chain": "regtest",
        "blocks": height,
        "headers": height,
        "bestblockhash": tip.to_string(),
        "difficulty": entry.block.header.difficulty_float(),
        "time": entry.block.header.time,
        "mediantime": c.median_time_past(height),
        "verificationprogress": 1.0,
        "initialblockdownload": false,
        "chainwork": shape::chainwork(entry),
        "size_on_disk": 0,
        "pruned": false,
        "warnings": "",
    }))
}

fn getblockhash(chain: &DevChain, params: &[Value]) -> Result<Value> {
    let height = int_param(params, 0, "height")?;
    let state = chain.lock();
    u32::try_from(height)
        .ok()
        .and_then(|h| state.chain.hash_at(h))
        .map(|h| json!(h.to_string()))
        .ok_or_else(|| RpcError::new(INVALID_PARAMETER, "Block height out of range"))
}

fn getblockheader(chain: &DevChain, params: &[Value]) -> Result<Value> {
    let hash: BlockHash = hash_param(params, 0, "blockhash")?;
    let verbose = verbosity(params, 1, 1)? != 0;
    let state = chain.lock();
    let entry = state
        .chain
        .entry(&hash)
        .ok_or_else(|| RpcError::new(INVALID_ADDRESS_OR_KEY, "Block not found"))?;
    if !verbose {
        return Ok(json!(serialize_hex(&entry.block.header)));
    }
    Ok(Value::Object(shape::header_fields(
        &state.chain,
        &hash,
        entry,
    )))
}

fn getblock(chain: &DevChain, params: &[Value]) -> Result<Value> {
    let hash: BlockHash = hash_param(params, 0, "blockhash")?;
    let verbosity = verbosity(params, 1, 1)?;
    let state = chain.lock();
    let entry = state
        .chain
        .entry(&hash)
        .ok_or_else(|| RpcError::new(INVALID_ADDRESS_OR_KEY, "Block not found"))?;
    match verbosity {
        0 => Ok(json!(serialize_hex(&entry.block))),
        1 => Ok(shape::block(&state.chain, &hash, entry)),
        v => Err(RpcError::new(
            INVALID_PARAMETER,
            format!("verbosity {v} is not supported (0 or 1)"),
        )),
    }
}

fn gettxout(chain: &DevChain, params: &[Value]) -> Result<Value> {
    let txid: Txid = hash_param(params, 0, "txid")?;
    let vout = u32::try_from(int_param(params, 1, "n")?)
        .map_err(|_| RpcError::new(INVALID_PARAMETER, "n out of range"))?;
    let include_mempool = params.get(2).and_then(Value::as_bool).unwrap_or(true);
    let op = OutPoint::new(txid, vout);
    let state = chain.lock();
    let (tip, height) = state.chain.tip();
    if include_mempool && state.mempool.spender(&op).is_some() {
        return Ok(Value::Null);
    }
    if let Some(u) = state.chain.utxo(&op) {
        return Ok(json!({
            "bestblock": tip.to_string(),
            "confirmations": height - u.height + 1,
            "value": shape::btc(u.txout.value),
            "scriptPubKey": shape::script_pubkey(&u.txout.script_pubkey),
            "coinbase": u.coinbase,
        }));
    }
    if include_mempool && let Some(out) = state.mempool.output(&op) {
        return Ok(json!({
            "bestblock": tip.to_string(),
            "confirmations": 0,
            "value": shape::btc(out.value),
            "scriptPubKey": shape::script_pubkey(&out.script_pubkey),
            "coinbase": false,
        }));
    }
    Ok(Value::Null)
}

fn getrawtransaction(chain: &DevChain, params: &[Value]) -> Result<Value> {
    let txid: Txid = hash_param(params, 0, "txid")?;
    let verbose = verbosity(params, 1, 0)? != 0;
    let state = chain.lock();
    let (tx, block): (&Transaction, Option<BlockHash>) = if let Some(e) = state.mempool.get(&txid) {
        (&e.tx, None)
    } else if let Some((tx, block)) = state.chain.transaction(&txid) {
        (tx, Some(block))
    } else {
        return Err(RpcError::new(
            INVALID_ADDRESS_OR_KEY,
            "No such mempool or blockchain transaction",
        ));
    };
    if !verbose {
        return Ok(json!(serialize_hex(tx)));
    }
    Ok(shape::transaction(&state.chain, tx, block.as_ref()))
}

fn decode_tx(params: &[Value]) -> Result<Transaction> {
    let hex = str_param(params, 0, "hexstring")?;
    deserialize_hex(hex)
        .map_err(|_| RpcError::new(tx_codes::DESERIALIZATION_ERROR, "TX decode failed"))
}

fn sendrawtransaction(chain: &DevChain, params: &[Value]) -> Result<Value> {
    let tx = decode_tx(params)?;
    let txid = chain.submit(&tx).map_err(chain_error)?;
    Ok(json!(txid.to_string()))
}

fn testmempoolaccept(chain: &DevChain, params: &[Value]) -> Result<Value> {
    let list = param(params, 0, "rawtxs")?
        .as_array()
        .ok_or_else(|| RpcError::new(TYPE_ERROR, "rawtxs must be an array"))?;
    let mut out = Vec::new();
    for raw in list {
        let tx = decode_tx(std::slice::from_ref(raw))?;
        let txid = tx.compute_txid();
        out.push(match chain.test_accept(&tx) {
            Ok(entry) => json!({
                "txid": txid.to_string(), "wtxid": tx.compute_wtxid().to_string(), "allowed": true,
                "vsize": entry.vsize, "fees": { "base": shape::btc(entry.fee) },
            }),
            Err(r) => json!({
                "txid": txid.to_string(), "wtxid": tx.compute_wtxid().to_string(), "allowed": false,
                "reject-reason": r.reason,
            }),
        });
    }
    Ok(json!(out))
}

fn estimatesmartfee(chain: &DevChain, params: &[Value]) -> Result<Value> {
    let target = int_param(params, 0, "conf_target")?;
    if !(1..=1008).contains(&target) {
        return Err(RpcError::new(
            INVALID_PARAMETER,
            format!("Invalid conf_target, must be between 1 and 1008 (got {target})"),
        ));
    }
    Ok(json!({
        "feerate": shape::btc_per_kvb(chain.config().feerate_sat_per_kvb),
        "blocks": target,
    }))
}

fn getmempoolinfo(chain: &DevChain) -> Result<Value> {
    let state = chain.lock();
    let bytes: u64 = state.mempool.entries().map(|e| e.vsize).sum();
    let fees: Amount = state.mempool.entries().map(|e| e.fee).sum();
    let min = shape::btc_per_kvb(chain.config().min_relay_fee_sat_per_kvb);
    Ok(json!({
        "loaded": true,
        "size": state.mempool.len(),
        "bytes": bytes,
        "usage": bytes,
        "total_fee": shape::btc(fees),
        "maxmempool": 300_000_000,
        "mempoolminfee": min,
        "minrelaytxfee": min,
        "incrementalrelayfee": shape::btc_per_kvb(1000),
        "unbroadcastcount": 0,
        "fullrbf": false,
    }))
}

fn getrawmempool(chain: &DevChain, params: &[Value]) -> Result<Value> {
    let verbose = verbosity(params, 0, 0)? != 0;
    let state = chain.lock();
    let mut entries: Vec<_> = state.mempool.entries().collect();
    entries.sort_by_key(|e| e.seq);
    if !verbose {
        return Ok(json!(
            entries
                .iter()
                .map(|e| e.tx.compute_txid().to_string())
                .collect::<Vec<_>>()
        ));
    }
    let in_pool = |t: &Txid| state.mempool.get(t).is_some();
    let map: serde_json::Map<String, Value> = entries
        .iter()
        .map(|e| {
            (
                e.tx.compute_txid().to_string(),
                shape::mempool_entry(e, in_pool),
            )
        })
        .collect();
    Ok(Value::Object(map))
}

fn getmempoolentry(chain: &DevChain, params: &[Value]) -> Result<Value> {
    let txid: Txid = hash_param(params, 0, "txid")?;
    let state = chain.lock();
    let entry = state
        .mempool
        .get(&txid)
        .ok_or_else(|| RpcError::new(INVALID_ADDRESS_OR_KEY, "Transaction not in mempool"))?;
    Ok(shape::mempool_entry(entry, |t| {
        state.mempool.get(t).is_some()
    }))
}

fn generatetoaddress(chain: &DevChain, params: &[Value]) -> Result<Value> {
    let n = int_param(params, 0, "nblocks")?;
    if !(0..=MAX_GENERATE as i64).contains(&n) {
        return Err(RpcError::new(
            INVALID_PARAMETER,
            format!("nblocks must be between 0 and {MAX_GENERATE}"),
        ));
    }
    let address = address_param(params, 1)?;
    let hashes = chain
        .mine(n as u32, &address.script_pubkey())
        .map_err(chain_error)?;
    Ok(json!(
        hashes.iter().map(|h| h.to_string()).collect::<Vec<_>>()
    ))
}

fn sendtoaddress(chain: &DevChain, params: &[Value]) -> Result<Value> {
    let address = address_param(params, 0)?;
    let amount = param(params, 1, "amount")?;
    let amount = amount
        .as_f64()
        .or_else(|| amount.as_str().and_then(|s| s.parse().ok()))
        .and_then(|btc| Amount::from_btc(btc).ok())
        .ok_or_else(|| RpcError::new(TYPE_ERROR, "Invalid amount"))?;
    let txid = chain
        .faucet_pay(address.script_pubkey(), amount)
        .map_err(chain_error)?;
    Ok(json!(txid.to_string()))
}

fn invalidateblock(chain: &DevChain, params: &[Value]) -> Result<Value> {
    let hash: BlockHash = hash_param(params, 0, "blockhash")?;
    chain.invalidate(&hash).map_err(chain_error)?;
    Ok(Value::Null)
}
