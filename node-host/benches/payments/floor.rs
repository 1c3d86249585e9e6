//! The floor for the payments bench: the same payment with each signer in its node's
//! process.
//!
//! Everything is node-host's own code: `node::run` (LDK, peers, the chain feed to the
//! signer), the stage and proxy, the `Pay` handler with its `PreapproveInvoice` check,
//! node-host storing the signer's state (fsync) before each answer is released, and the
//! real signer (VLS with the on-chain validator) matching the payment against the device's
//! signed `Pay` request. What is taken away is the signer's link: no gRPC, no TLS, no
//! second process; each signer answers from a thread beside its node. Both nodes and the
//! embedded chain run in this process, and the client's call is in process too (remotely it
//! is one more gRPC call, about 1 ms).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bitcoin::{Address, Amount, Network};
use prost::Message;
use skylight_client::chain::ChainClient;
use skylight_client::keys::NodeKeys;
use skylight_client::secret::HsmSecret;
use skylight_client::signed_request::{RequestSigner, grpc_frame};
use skylight_devchain::{DevChain, rpc};
use skylight_node_host::api::{self, Ctx};
use skylight_node_host::node::{self, Node, Settings};
use skylight_node_host::paths::NodeDir;
use skylight_node_host::server::signed_requests::{Headers, Verifier};
use skylight_node_host::signer_link::authority::Authority;
use skylight_node_host::signer_link::service::SignerLink;
use skylight_node_host::signer_link::stage::Stage;
use skylight_node_host::store::invoices::Invoices;
use skylight_node_host::store::kv::redb::RedbKv;
use skylight_node_host::store::payments::Payments;
use skylight_node_host::store::signer_state::SignerState;
use skylight_proto::cln as pb;

use crate::measure::{Measured, invoice_request};
use tokio_util::sync::CancellationToken;

/// One node with its signer beside it.
struct Host {
    node: Node,
    link: SignerLink,
    verifier: Arc<Verifier>,
    device: RequestSigner,
    device_key: Vec<u8>,
    id: String,
    _dir: tempfile::TempDir,
}

impl Host {
    /// What node-host's handlers are called with, as for a call from the tenant's device.
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            node: &self.node,
            link: &self.link,
            device: "default".into(),
        }
    }

    /// `msg` as the device signs it, checked and kept by the node as its gRPC layer would
    /// (so the signer finds it among the requests shipped with `PreapproveInvoice`), with
    /// its headers, to tell the node when the call is over.
    fn signed<T: Message + Clone>(&self, path: &str, msg: T) -> (T, Headers) {
        let req = self.device.sign(msg.clone()).unwrap();
        let headers = Headers::from_http(&req.metadata().clone().into_headers());
        self.verifier
            .check(path, &headers, &grpc_frame(&msg), Some(&self.device_key))
            .expect("the node accepts the signed request");
        (msg, headers)
    }
}

async fn host(
    chain: Arc<ChainClient>,
    io: tokio::runtime::Handle,
    answered: Arc<AtomicU64>,
    stop: CancellationToken,
) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let secret = HsmSecret::from_bytes(bitcoin::secp256k1::rand::random());
    let node_id = NodeKeys::derive(&secret, Network::Regtest).node_id;
    let key = rcgen::KeyPair::generate().unwrap();
    let rune = skylight_client::runes::RuneMaster::new(&secret)
        .device_rune(key.serialize_pem().as_bytes())
        .unwrap();
    let stage = Arc::new(Stage::new());
    let files = NodeDir::new(dir.path());
    let kv = RedbKv::shared(&files.ldk_store()).unwrap();
    let state = Arc::new(SignerState::open(kv.clone()).unwrap());
    let verifier = Arc::new(Verifier::new(Duration::from_secs(300)));
    skylight_test_support::in_process::attach_signer_shipping(
        stage.clone(),
        state.clone(),
        secret,
        Some(verifier.clone()),
        answered,
    );
    let node = Node::new(node::Parts {
        id: node_id,
        network: Network::Regtest,
        invoices: Arc::new(Invoices::open(kv.clone())),
        payments: Arc::new(Payments::open(kv.clone())),
        outbox: Arc::new(skylight_node_host::store::outbox::Outbox::open(kv.clone()).unwrap()),
        stage: stage.clone(),
        signer_wait: Duration::from_secs(30),
        ldk_runtime: tokio::runtime::Handle::current(),
    });
    // The signers answer from threads beside the nodes: this link carries none of them.
    let authority = Authority::new(node_id, state.clone()).unwrap();
    let link = SignerLink::new(stage, state, verifier.clone(), authority);
    let settings = Settings {
        chain,
        p2p_listen: "127.0.0.1:0".parse().unwrap(),
        p2p_announce: None,
        signer_deadline: Duration::from_secs(120),
        // node-host's default.
        chain_poll: Duration::from_millis(1000),
        store: Arc::new(skylight_node_host::store::ldk_store::LdkStore::on(kv)),
        io,
    };
    tokio::spawn(node::run(settings, node.clone(), stop));
    let host = Host {
        node,
        link,
        verifier,
        device: RequestSigner::new(key.serialize_pem().as_bytes())
            .unwrap()
            .with_rune(&rune),
        device_key: key.public_key_raw().to_vec(),
        id: node_id.to_string(),
        _dir: dir,
    };
    until("the node starts", async || {
        api::getinfo::handle(&host.ctx(), pb::GetinfoRequest {})
            .await
            .unwrap()
            .warning_lightningd_sync
            .is_none()
    })
    .await;
    host
}

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Makes `count` payments A -> B with both signers in process.
pub fn run(count: usize) -> Measured {
    // As in node-host: LDK on one runtime, the I/O that carries signer traffic on another.
    let ldk = tokio::runtime::Builder::new_multi_thread()
        .thread_name("ldk")
        .enable_all()
        .build()
        .unwrap();
    let io = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("node-io")
        .enable_all()
        .build()
        .unwrap();
    let measured = ldk.block_on(bench(count, io.handle().clone()));
    io.shutdown_timeout(Duration::from_secs(2));
    ldk.shutdown_timeout(Duration::from_secs(2));
    measured
}

async fn bench(count: usize, io: tokio::runtime::Handle) -> Measured {
    let tmp = tempfile::tempdir().unwrap();
    let chain_dir = tmp.path().join("chain");
    let config = skylight_devchain::Config {
        initial_blocks: 101,
        ..Default::default()
    };
    let devchain = Arc::new(DevChain::open(&chain_dir, config).unwrap());
    let (listener, endpoint) = rpc::bind(&chain_dir, "127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .await
        .unwrap();
    let credentials = rpc::Credentials::load(&endpoint.cookie).unwrap();
    let chain = Arc::new(ChainClient::new(&endpoint.url, &credentials.base64()).unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(rpc::serve(
        devchain.clone(),
        listener,
        credentials,
        stop.clone().cancelled_owned(),
    ));
    let answered = Arc::new(AtomicU64::new(0));
    let a = host(chain.clone(), io.clone(), answered.clone(), stop.clone()).await;
    let b = host(chain.clone(), io.clone(), answered.clone(), stop.clone()).await;
    let mine = |n| {
        devchain.mine(n, &devchain.faucet_script()).expect("mined");
    };

    // Fund A, connect to B, open a channel, wait until it is usable.
    let addr = api::newaddr::handle(&a.ctx(), pb::NewaddrRequest::default())
        .await
        .unwrap()
        .bech32
        .unwrap();
    let script = addr
        .parse::<Address<_>>()
        .unwrap()
        .require_network(Network::Regtest)
        .unwrap()
        .script_pubkey();
    devchain.faucet_pay(script, Amount::ONE_BTC).unwrap();
    mine(1);
    until("A's wallet sees the faucet", async || {
        !api::listfunds::handle(&a.ctx(), pb::ListfundsRequest::default())
            .await
            .unwrap()
            .outputs
            .is_empty()
    })
    .await;
    let b_info = api::getinfo::handle(&b.ctx(), pb::GetinfoRequest {})
        .await
        .unwrap();
    let bind = &b_info.binding[0];
    let peer = format!(
        "{}@{}:{}",
        b.id,
        bind.address.as_deref().unwrap(),
        bind.port.unwrap()
    );
    api::connect::handle(
        &a.ctx(),
        pb::ConnectRequest {
            id: peer,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let funding = api::fundchannel::handle(
        &a.ctx(),
        pb::FundchannelRequest {
            id: hex::decode(&b.id).unwrap(),
            amount: Some(pb::AmountOrAll {
                value: Some(pb::amount_or_all::Value::Amount(pb::Amount {
                    msat: 5_000_000_000,
                })),
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // Broadcast once the peer has signed the first commitment: mine only after that.
    let txid = hex::encode(&funding.txid);
    until("the funding is in the mempool", async || {
        chain
            .call("getmempoolentry", &[serde_json::json!(txid)])
            .await
            .is_ok()
    })
    .await;
    mine(6);
    until("the channel is usable", async || {
        api::listpeerchannels::handle(&a.ctx(), pb::ListpeerchannelsRequest::default())
            .await
            .unwrap()
            .channels
            .first()
            .is_some_and(|c| c.state == pb::ChannelState::ChanneldNormal as i32)
    })
    .await;

    let mut measured = Measured::default();
    for i in 0..count {
        let invoice = api::invoice::handle(&b.ctx(), invoice_request(i))
            .await
            .unwrap()
            .bolt11;
        let (pay, headers) = a.signed(
            "/cln.Node/Pay",
            pb::PayRequest {
                bolt11: invoice,
                ..Default::default()
            },
        );
        measured
            .record(|| answered.load(Ordering::Relaxed), async {
                api::pay::handle(&a.ctx(), pay).await.unwrap();
                a.verifier.finished(&headers);
            })
            .await;
    }
    stop.cancel();
    measured.done()
}
