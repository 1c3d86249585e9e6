//! What the dev chain's integration tests share: a chain served on loopback, a key the
//! test holds, and bitcoind-shaped calls. (Cargo's convention for shared test code: a
//! `common` module each test file declares.)

use std::str::FromStr;
use std::sync::Arc;

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::{
    Address, Amount, CompressedPublicKey, Network, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, Txid, Witness, absolute, transaction,
};
use serde_json::{Value, json};
use skylight_client::chain::ChainClient;
use skylight_devchain::{Config, DevChain, rpc};

/// A dev chain served on loopback, stopped when dropped.
pub struct ServedChain {
    /// The chain itself (`rpc.rs` mines on it directly; `refusals.rs` does not).
    #[allow(dead_code)]
    pub chain: Arc<DevChain>,
    pub client: ChainClient,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

pub async fn start(initial_blocks: u32) -> ServedChain {
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
pub struct Key {
    pub secret: SecretKey,
    pub address: Address,
}

impl Key {
    pub fn new() -> Self {
        let secret = SecretKey::new(&mut bitcoin::secp256k1::rand::thread_rng());
        let pk = CompressedPublicKey(secret.public_key(&Secp256k1::new()));
        Key {
            secret,
            address: Address::p2wpkh(&pk, Network::Regtest),
        }
    }

    /// A transaction spending `prev` (paying this key) to `to`, signed with `signer`.
    pub fn spend(
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
    pub fn spend_locked(
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

pub async fn call(c: &ChainClient, method: &str, params: &[Value]) -> Value {
    c.call(method, params)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e:#}"))
}

/// The error message of a refused call; it names bitcoind's code.
pub async fn refusal(c: &ChainClient, method: &str, params: &[Value]) -> String {
    format!(
        "{:#}",
        c.call(method, params).await.expect_err("should be refused")
    )
}

pub async fn mine(c: &ChainClient, n: u32, to: &Address) -> Vec<String> {
    call(c, "generatetoaddress", &[json!(n), json!(to.to_string())])
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect()
}

/// Funds `key` from the faucet and confirms it; returns the outpoint and amount.
pub async fn funded(r: &ServedChain, key: &Key, btc: f64) -> (OutPoint, Amount) {
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

pub fn hex(tx: &Transaction) -> Value {
    json!(serialize_hex(tx))
}
