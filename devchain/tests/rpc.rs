//! The dev chain through its JSON-RPC, driven by `lightning-block-sync`'s own client: what
//! node-hosts will run against it.

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::{
    Address, Amount, BlockHash, CompressedPublicKey, Network, OutPoint, ScriptBuf, Sequence,
    Transaction, TxIn, TxOut, Txid, Witness, absolute, transaction,
};
use lightning::chain::{BestBlock, Listen};
use lightning_block_sync::init::validate_best_block_header;
use lightning_block_sync::poll::ChainPoller;
use lightning_block_sync::{BlockSource, SpvClient, UnboundedCache};
use serde_json::{Value, json};
use skylight_client::chain::ChainClient;
use skylight_devchain::{Config, DevChain, rpc};

struct ServedChain {
    chain: Arc<DevChain>,
    client: ChainClient,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn start(initial_blocks: u32) -> ServedChain {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        initial_blocks,
        ..Config::default()
    };
    let chain = Arc::new(DevChain::open(dir.path(), config).unwrap());
    let (listener, endpoint) = rpc::bind(dir.path(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let credentials = rpc::Credentials::load(&endpoint.cookie).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(rpc::serve(chain.clone(), listener, credentials, async {
        let _ = stopped.await;
    }));
    let client = skylight_devchain::client::for_dir(dir.path()).unwrap();
    ServedChain {
        chain,
        client,
        _stop: stop,
        _dir: dir,
    }
}

/// A key the test holds, with its P2WPKH address.
struct Key {
    secret: SecretKey,
    address: Address,
}

impl Key {
    fn new() -> Self {
        let secret = SecretKey::new(&mut bitcoin::secp256k1::rand::thread_rng());
        let pk = CompressedPublicKey(secret.public_key(&Secp256k1::new()));
        Key {
            secret,
            address: Address::p2wpkh(&pk, Network::Regtest),
        }
    }

    /// A transaction spending `prev` (paying this key) to `to`, signed with `signer`.
    fn spend(
        &self,
        prev: (OutPoint, Amount),
        to: ScriptBuf,
        fee: Amount,
        version: i32,
        sequence: Sequence,
        signer: &SecretKey,
    ) -> Transaction {
        self.spend_locked(
            prev,
            to,
            fee,
            version,
            sequence,
            signer,
            absolute::LockTime::ZERO,
        )
    }

    /// As `spend`, with an absolute locktime.
    #[allow(clippy::too_many_arguments)]
    fn spend_locked(
        &self,
        prev: (OutPoint, Amount),
        to: ScriptBuf,
        fee: Amount,
        version: i32,
        sequence: Sequence,
        signer: &SecretKey,
        lock_time: absolute::LockTime,
    ) -> Transaction {
        let mut tx = Transaction {
            version: transaction::Version(version),
            lock_time,
            input: vec![TxIn {
                previous_output: prev.0,
                script_sig: ScriptBuf::new(),
                sequence,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: prev.1 - fee,
                script_pubkey: to,
            }],
        };
        // Signed by `signer`, whose key may not be the one the output pays (a forgery).
        skylight_devchain::faucet::sign_p2wpkh(&mut tx, 0, signer, prev.1);
        tx
    }
}

async fn call(c: &ChainClient, method: &str, params: &[Value]) -> Value {
    c.call(method, params)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e:#}"))
}

/// The error message of a refused call; it names bitcoind's code.
async fn refusal(c: &ChainClient, method: &str, params: &[Value]) -> String {
    format!(
        "{:#}",
        c.call(method, params).await.expect_err("should be refused")
    )
}

async fn mine(c: &ChainClient, n: u32, to: &Address) -> Vec<String> {
    call(c, "generatetoaddress", &[json!(n), json!(to.to_string())])
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect()
}

/// Funds `key` from the faucet and confirms it; returns the outpoint and amount.
async fn funded(r: &ServedChain, key: &Key, btc: f64) -> (OutPoint, Amount) {
    let txid = call(
        &r.client,
        "sendtoaddress",
        &[json!(key.address.to_string()), json!(btc)],
    )
    .await;
    let txid = Txid::from_str(txid.as_str().unwrap()).unwrap();
    mine(&r.client, 1, &Key::new().address).await;
    let tx = call(
        &r.client,
        "getrawtransaction",
        &[json!(txid.to_string()), json!(true)],
    )
    .await;
    let vout = tx["vout"]
        .as_array()
        .unwrap()
        .iter()
        .position(|o| o["scriptPubKey"]["address"] == key.address.to_string())
        .unwrap();
    (
        OutPoint::new(txid, vout as u32),
        Amount::from_btc(btc).unwrap(),
    )
}

fn hex(tx: &Transaction) -> Value {
    json!(serialize_hex(tx))
}

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Listen for Recorder {
    fn filtered_block_connected(
        &self,
        header: &bitcoin::block::Header,
        _txdata: &lightning::chain::transaction::TransactionData,
        height: u32,
    ) {
        self.0
            .lock()
            .unwrap()
            .push(format!("connect {height} {}", header.block_hash()));
    }

    fn blocks_disconnected(&self, fork_point: BestBlock) {
        self.0.lock().unwrap().push(format!(
            "disconnect to {} {}",
            fork_point.height, fork_point.block_hash
        ));
    }
}

#[tokio::test]
async fn block_sync_fetches_headers_and_blocks_and_follows_a_reorg() {
    let r = start(0).await;
    let miner = Key::new();
    mine(&r.client, 5, &miner.address).await;

    let source = r.client.rpc();
    let (best, height) = source.get_best_block().await.unwrap();
    assert_eq!(height, Some(5));
    // Headers and blocks pass lightning-block-sync's checks (PoW, chainwork, merkle root,
    // witness commitment).
    let tip = validate_best_block_header(source).await.unwrap();
    assert_eq!(tip.to_best_block().block_hash, best);
    assert_eq!(tip.height, 5);
    let genesis = bitcoin::constants::genesis_block(Network::Regtest).block_hash();
    let g = source.get_header(&genesis, Some(0)).await.unwrap();
    assert_eq!(g.height, 0);
    let block = source.get_block(&best).await.unwrap();
    assert!(
        matches!(block, lightning_block_sync::BlockData::FullBlock(b) if b.block_hash() == best)
    );

    let poller = ChainPoller::new(source, Network::Regtest);
    let mut cache = UnboundedCache::new();
    let listener = Recorder::default();
    let mut spv = SpvClient::new(tip, poller, &mut cache, &listener);

    let new = mine(&r.client, 3, &miner.address).await;
    let (_, changed) = spv.poll_best_tip().await.unwrap();
    assert!(changed);
    let expected: Vec<String> = new
        .iter()
        .enumerate()
        .map(|(i, h)| format!("connect {} {h}", 6 + i))
        .collect();
    assert_eq!(*listener.0.lock().unwrap(), expected);
    listener.0.lock().unwrap().clear();

    // Invalidate the tip (height 8): the chain falls back to 7, a worse tip, and nothing
    // changes for the listener until a longer fork appears.
    call(&r.client, "invalidateblock", &[json!(new[2])]).await;
    assert_eq!(call(&r.client, "getblockcount", &[]).await, json!(7));
    let (_, changed) = spv.poll_best_tip().await.unwrap();
    assert!(!changed);
    let fork = mine(&r.client, 2, &miner.address).await;
    let (_, changed) = spv.poll_best_tip().await.unwrap();
    assert!(changed);
    assert_eq!(
        *listener.0.lock().unwrap(),
        vec![
            format!("disconnect to 7 {}", new[1]),
            format!("connect 8 {}", fork[0]),
            format!("connect 9 {}", fork[1]),
        ]
    );
    // The stale block is still served, with -1 confirmations, as bitcoind does.
    let stale = call(&r.client, "getblockheader", &[json!(new[2])]).await;
    assert_eq!(stale["confirmations"], json!(-1));
}

#[tokio::test]
async fn a_wallet_spend_is_accepted_mined_and_seen_by_gettxout() {
    let r = start(101).await;
    let key = Key::new();
    let (prev, value) = funded(&r, &key, 1.0).await;

    let out = call(
        &r.client,
        "gettxout",
        &[json!(prev.txid.to_string()), json!(prev.vout)],
    )
    .await;
    assert_eq!(out["value"], json!(1.0));
    assert_eq!(out["confirmations"], json!(1));
    assert_eq!(out["scriptPubKey"]["type"], json!("witness_v0_keyhash"));

    let dest = Key::new();
    let tx = key.spend(
        (prev, value),
        dest.address.script_pubkey(),
        Amount::from_sat(500),
        2,
        Sequence::MAX,
        &key.secret,
    );
    let txid = call(&r.client, "sendrawtransaction", &[hex(&tx)]).await;
    assert_eq!(txid, json!(tx.compute_txid().to_string()));
    // Spent in the mempool: gettxout (mempool included) says null; the new output shows.
    let prev_out = call(
        &r.client,
        "gettxout",
        &[json!(prev.txid.to_string()), json!(prev.vout)],
    )
    .await;
    assert_eq!(prev_out, Value::Null);
    let pool = call(&r.client, "getrawmempool", &[]).await;
    assert_eq!(pool, json!([tx.compute_txid().to_string()]));

    mine(&r.client, 1, &Key::new().address).await;
    assert_eq!(call(&r.client, "getrawmempool", &[]).await, json!([]));
    let new_out = call(
        &r.client,
        "gettxout",
        &[json!(tx.compute_txid().to_string()), json!(0)],
    )
    .await;
    assert_eq!(
        new_out["value"],
        json!((value - Amount::from_sat(500)).to_btc())
    );
    assert_eq!(new_out["confirmations"], json!(1));
    assert_eq!(
        new_out["scriptPubKey"]["address"],
        json!(dest.address.to_string())
    );
    let confirmed = call(
        &r.client,
        "getrawtransaction",
        &[json!(tx.compute_txid().to_string()), json!(true)],
    )
    .await;
    assert_eq!(confirmed["confirmations"], json!(1));
    // Sending it again: already in the chain.
    assert!(
        refusal(&r.client, "sendrawtransaction", &[hex(&tx)])
            .await
            .contains("(-27)")
    );
}

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

#[tokio::test]
async fn queries_answer_in_bitcoinds_shapes_and_codes() {
    let r = start(0).await;
    let c = &r.client;
    let info = call(c, "getblockchaininfo", &[]).await;
    assert_eq!(info["chain"], json!("regtest"));
    assert_eq!(info["blocks"], json!(0));
    let genesis = call(c, "getblockhash", &[json!(0)]).await;
    assert_eq!(
        genesis,
        json!(
            bitcoin::constants::genesis_block(Network::Regtest)
                .block_hash()
                .to_string()
        )
    );
    assert!(
        refusal(c, "getblockhash", &[json!(1)])
            .await
            .contains("(-8)")
    );
    let header = call(c, "getblockheader", std::slice::from_ref(&genesis)).await;
    assert!(header.get("previousblockhash").is_none());
    assert_eq!(header["bits"], json!("207fffff"));
    assert_eq!(header["chainwork"].as_str().unwrap().len(), 64);
    let raw = call(c, "getblockheader", &[genesis.clone(), json!(false)]).await;
    assert_eq!(raw.as_str().unwrap().len(), 160);
    let unknown = BlockHash::all_zeros().to_string();
    assert!(
        refusal(c, "getblockheader", &[json!(unknown)])
            .await
            .contains("(-5)")
    );
    let fee = call(c, "estimatesmartfee", &[json!(6)]).await;
    assert_eq!(fee["blocks"], json!(6));
    assert!(fee["feerate"].as_f64().unwrap() > 0.0);
    let pool = call(c, "getmempoolinfo", &[]).await;
    assert_eq!(pool["size"], json!(0));
    assert!(pool["mempoolminfee"].as_f64().unwrap() > 0.0);
    assert!(refusal(c, "nosuchmethod", &[]).await.contains("(-32601)"));
    let e = refusal(
        c,
        "sendtoaddress",
        &[json!(Key::new().address.to_string()), json!(1.0)],
    )
    .await;
    assert!(
        e.contains("(-6)"),
        "an empty faucet says insufficient funds: {e}"
    );
    assert!(
        refusal(c, "generatetoaddress", &[json!(1), json!("notanaddress")])
            .await
            .contains("(-5)")
    );
    assert!(
        refusal(c, "invalidateblock", &[genesis])
            .await
            .contains("(-8)")
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused() {
    let r = start(0).await;
    let bad = ChainClient::new(&r.client.url, "X19jb29raWVfXzp3cm9uZw==").unwrap();
    assert!(bad.call("getblockcount", &[]).await.is_err());
    assert_eq!(r.chain.lock().chain.height(), 0);
}
