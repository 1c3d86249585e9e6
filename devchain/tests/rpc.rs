//! The dev chain through its JSON-RPC, driven by `lightning-block-sync`'s own client: what
//! node-hosts will run against it.

use std::sync::Mutex;

use bitcoin::hashes::Hash;
use bitcoin::{Amount, BlockHash, Network, Sequence};
use lightning::chain::{BestBlock, Listen};
use lightning_block_sync::init::validate_best_block_header;
use lightning_block_sync::poll::ChainPoller;
use lightning_block_sync::{BlockSource, SpvClient, UnboundedCache};
use serde_json::{Value, json};
use skylight_client::chain::ChainClient;

mod common;
use common::*;

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

    let source = &r.client;
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

/// Serves `chain` from `dir` on `addr` with a new cookie, accepting `user` too; stops when
/// the returned sender drops.
async fn serve_at(
    chain: &std::sync::Arc<skylight_devchain::DevChain>,
    dir: &std::path::Path,
    addr: std::net::SocketAddr,
    user: (&str, &str),
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let (listener, endpoint) = skylight_devchain::rpc::bind(dir, addr).await.unwrap();
    let at = listener.local_addr().unwrap();
    let credentials = skylight_devchain::rpc::Credentials::load(&endpoint.cookie)
        .unwrap()
        .with_user(user.0, user.1);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(skylight_devchain::rpc::serve(
        chain.clone(),
        listener,
        credentials,
        async {
            let _ = stopped.await;
        },
    ));
    (at, stop)
}

#[tokio::test]
async fn a_chosen_user_is_accepted_beside_the_cookie_and_a_restart_rewrites_the_cookie_clients_read_again()
 {
    use skylight_client::chain::{ChainError, ChainRpc, RpcAuth};
    let dir = tempfile::tempdir().unwrap();
    let chain = std::sync::Arc::new(
        skylight_devchain::DevChain::open(dir.path(), Default::default()).unwrap(),
    );
    let (at, stop) = serve_at(
        &chain,
        dir.path(),
        "127.0.0.1:0".parse().unwrap(),
        ("op", "s3cret"),
    )
    .await;
    let url = format!("http://{at}");
    let as_user = |password: &str| {
        ChainClient::connect(
            &ChainRpc::new(
                &url,
                Network::Regtest,
                RpcAuth::UserPassword {
                    user: "op".into(),
                    password: password.into(),
                },
            )
            .unwrap(),
        )
    };
    let user = as_user("s3cret");
    assert_eq!(user.info().await.unwrap().network, Network::Regtest);
    let cookie_file = skylight_devchain::rpc::Endpoint::files(dir.path()).1;
    let by_cookie = ChainClient::with_cookie(&url, &cookie_file).unwrap();
    let first_cookie = std::fs::read_to_string(&cookie_file).unwrap();
    assert!(by_cookie.call("getblockcount", &[]).await.is_ok());
    match as_user("wrong").call("getblockcount", &[]).await {
        Err(ChainError::Unreachable { detail, .. }) => {
            assert!(detail.contains("refuses the credentials"), "{detail}")
        }
        other => panic!("a wrong password must be refused, got {other:?}"),
    }

    // Stopped: the client says it cannot reach the chain, not that it refused.
    drop(stop);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(matches!(
        by_cookie.call("getblockcount", &[]).await,
        Err(ChainError::Unreachable { .. })
    ));
    // Started again where it was, with a new cookie, as bitcoind does: the client that
    // held the old one reads the new one and goes on.
    let (_, _stop) = serve_at(&chain, dir.path(), at, ("op", "s3cret")).await;
    assert_ne!(std::fs::read_to_string(&cookie_file).unwrap(), first_cookie);
    assert!(by_cookie.call("getblockcount", &[]).await.is_ok());
    assert!(user.call("getblockcount", &[]).await.is_ok());
}
