//! Blocks mined per second and transactions accepted per second, through the JSON-RPC that
//! node-hosts use (`lightning-block-sync`'s client), against an in-process dev chain.
//!
//! `cargo bench -p skylight-devchain --bench devchain`. Prints figures; asserts nothing about
//! time. `BENCH_TXS` (default 2000) sets how many transactions.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::{
    Address, Amount, CompressedPublicKey, Network, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, Txid, Witness, absolute, transaction,
};
use serde_json::{Value, json};
use skylight_client::chain::ChainClient;
use skylight_devchain::faucet::sign_p2wpkh;
use skylight_devchain::{Config, DevChain, rpc};

fn spend(inputs: &[(OutPoint, Amount)], outputs: Vec<TxOut>, key: &SecretKey) -> Transaction {
    let mut tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: inputs
            .iter()
            .map(|(op, _)| TxIn {
                previous_output: *op,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            })
            .collect(),
        output: outputs,
    };
    for (i, (_, value)) in inputs.iter().enumerate() {
        sign_p2wpkh(&mut tx, i, key, *value);
    }
    tx
}

async fn call(c: &ChainClient, method: &str, params: &[Value]) -> Value {
    c.call(method, params)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e:#}"))
}

#[tokio::main]
async fn main() {
    let n_txs: usize = std::env::var("BENCH_TXS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().unwrap();
    let chain = Arc::new(
        DevChain::open(
            dir.path(),
            Config {
                initial_blocks: 101,
                ..Config::default()
            },
        )
        .unwrap(),
    );
    let (listener, endpoint) = rpc::bind(dir.path(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let credentials = rpc::Credentials::load(&endpoint.cookie).unwrap();
    tokio::spawn(rpc::serve(
        chain.clone(),
        listener,
        credentials,
        std::future::pending(),
    ));
    let client = skylight_devchain::client::for_dir(dir.path()).unwrap();
    println!(
        "dev chain {} on {} cores",
        client.url,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    let key = SecretKey::new(&mut bitcoin::secp256k1::rand::thread_rng());
    let pk = CompressedPublicKey(key.public_key(&Secp256k1::new()));
    let address = Address::p2wpkh(&pk, Network::Regtest);
    let miner = json!(address.to_string());

    // Empty blocks, 100 per call: one durable commit per call.
    let start = Instant::now();
    for _ in 0..10 {
        call(&client, "generatetoaddress", &[json!(100), miner.clone()]).await;
    }
    let t = start.elapsed();
    println!(
        "mine (generatetoaddress 100 x 10)   {:>8.0} blocks/s",
        1000.0 / t.as_secs_f64()
    );

    // One block per call: one durable commit per block.
    let start = Instant::now();
    for _ in 0..100 {
        call(&client, "generatetoaddress", &[json!(1), miner.clone()]).await;
    }
    let t = start.elapsed();
    println!(
        "mine (generatetoaddress 1 x 100)    {:>8.0} blocks/s",
        100.0 / t.as_secs_f64()
    );

    // Fan a faucet payment out to `n_txs` outputs, then spend each alone.
    let per = Amount::from_sat(100_000);
    let total = per * n_txs as u64 + Amount::from_sat(1_000_000);
    let funding = call(
        &client,
        "sendtoaddress",
        &[miner.clone(), json!(total.to_btc())],
    )
    .await;
    call(&client, "generatetoaddress", &[json!(1), miner.clone()]).await;
    let funding = Txid::from_str(funding.as_str().unwrap()).unwrap();
    let tx: Value = call(
        &client,
        "getrawtransaction",
        &[json!(funding.to_string()), json!(true)],
    )
    .await;
    let vout = tx["vout"]
        .as_array()
        .unwrap()
        .iter()
        .position(|o| o["scriptPubKey"]["address"] == miner)
        .unwrap();
    let script = address.script_pubkey();
    let fan = spend(
        &[(OutPoint::new(funding, vout as u32), total)],
        (0..n_txs)
            .map(|_| TxOut {
                value: per,
                script_pubkey: script.clone(),
            })
            .collect(),
        &key,
    );
    call(&client, "sendrawtransaction", &[json!(serialize_hex(&fan))]).await;
    call(&client, "generatetoaddress", &[json!(1), miner.clone()]).await;
    let fee = Amount::from_sat(1_000);
    let spends: Vec<String> = (0..n_txs)
        .map(|i| {
            let op = OutPoint::new(fan.compute_txid(), i as u32);
            serialize_hex(&spend(
                &[(op, per)],
                vec![TxOut {
                    value: per - fee,
                    script_pubkey: script.clone(),
                }],
                &key,
            ))
        })
        .collect();

    let start = Instant::now();
    for hex in &spends {
        call(&client, "sendrawtransaction", &[json!(hex)]).await;
    }
    let t = start.elapsed();
    println!(
        "sendrawtransaction (sequential)     {:>8.0} tx/s ({n_txs} P2WPKH spends, scripts verified)",
        n_txs as f64 / t.as_secs_f64()
    );

    let start = Instant::now();
    call(&client, "generatetoaddress", &[json!(1), miner.clone()]).await;
    let t = start.elapsed();
    let block = call(
        &client,
        "getblock",
        &[call(&client, "getbestblockhash", &[]).await, json!(1)],
    )
    .await;
    println!(
        "mine a block of {} transactions   {:>8.1} ms",
        block["nTx"].as_u64().unwrap() - 1,
        t.as_secs_f64() * 1e3
    );
}
