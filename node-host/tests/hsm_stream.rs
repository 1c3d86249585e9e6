//! The node server's signer plumbing over real mutual TLS, in process.

use std::sync::Arc;
use std::time::Duration;

use bitcoin::secp256k1::{PublicKey, SecretKey};
use skylight_certs::{Validity, names};
use skylight_client::state_key::StateSigner;
use skylight_node_host::api::NodeApi;
use skylight_node_host::node;
use skylight_node_host::server::signed_requests::Verifier;
use skylight_node_host::server::{self, ServerTls};
use skylight_node_host::signer_link::authority::Authority;
use skylight_node_host::signer_link::service::SignerLink;
use skylight_node_host::signer_link::stage::{SignerError, Stage};
use skylight_node_host::store::kv::redb::RedbKv;
use skylight_node_host::store::signer_state::SignerState;
use skylight_proto::greenlight::node_client::NodeClient;
use skylight_proto::greenlight::{Empty, HsmResponse, SignerStateEntry};
use skylight_test_support::Pki;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// Two tenants' node ids (the public keys of secrets 1 and 2).
const A: [u8; 33] = [
    0x02, 0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62, 0x95, 0xce, 0x87, 0x0b,
    0x07, 0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce, 0x28, 0xd9, 0x59, 0xf2, 0x81, 0x5b, 0x16, 0xf8, 0x17,
    0x98,
];
const B: [u8; 33] = [
    0x02, 0xc6, 0x04, 0x7f, 0x94, 0x41, 0xed, 0x7d, 0x6d, 0x30, 0x45, 0x40, 0x6e, 0x95, 0xc0, 0x7c,
    0xd8, 0x5c, 0x77, 0x8e, 0x4b, 0x8c, 0xef, 0x3c, 0xa7, 0xab, 0xac, 0x09, 0xb9, 0x5c, 0x70, 0x9e,
    0xe5,
];

struct Served {
    addr: std::net::SocketAddr,
    stage: Arc<Stage>,
    state: Arc<SignerState>,
    verifier: Arc<Verifier>,
    _dir: tempfile::TempDir,
}

async fn start(pki: &Pki) -> Served {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let stage = Arc::new(Stage::new());
    let kv = RedbKv::shared(&dir.path().join("ldk.redb")).unwrap();
    let state = Arc::new(SignerState::open(kv.clone()).unwrap());
    let tenant = &pki.tenants[0];
    let server_cert = tenant
        .issue_node_server(&hex::encode(A), Validity::days(1))
        .unwrap();
    let tls = ServerTls {
        cert_chain_pem: format!(
            "{}{}{}",
            server_cert.cert_pem,
            tenant.cert_pem(),
            pki.users.cert_pem()
        ),
        key_pem: server_cert.key_pem,
        tenant_ca_pem: tenant.cert_pem().to_string(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let verifier = Arc::new(Verifier::new(Duration::from_secs(60)));
    let activity = Arc::new(skylight_node_host::activity::Activity::default());
    // No Lightning node runs here: these tests are about the signer link.
    let lightning = node::Node::new(node::Parts {
        id: bitcoin::secp256k1::PublicKey::from_slice(&A).unwrap(),
        network: bitcoin::Network::Regtest,
        invoices: Arc::new(skylight_node_host::store::invoices::Invoices::open(
            kv.clone(),
        )),
        payments: Arc::new(skylight_node_host::store::payments::Payments::open(
            kv.clone(),
        )),
        outbox: Arc::new(skylight_node_host::store::outbox::Outbox::open(kv).unwrap()),
        stage: stage.clone(),
        signer_wait: Duration::from_secs(1),
        ldk_runtime: tokio::runtime::Handle::current(),
    });
    let authority = Authority::new(PublicKey::from_slice(&A).unwrap(), state.clone()).unwrap();
    let link = SignerLink::new(stage.clone(), state.clone(), verifier.clone(), authority);
    tokio::spawn(server::serve(
        listener,
        tls,
        NodeApi::new(lightning, link),
        activity,
        verifier.clone(),
        std::future::pending(),
    ));
    Served {
        addr,
        stage,
        state,
        verifier,
        _dir: dir,
    }
}

async fn client(
    node: &Served,
    pki: &Pki,
    chain: &str,
    key: &str,
) -> Result<NodeClient<Channel>, tonic::transport::Error> {
    Ok(NodeClient::new(channel(node, pki, chain, key).await?))
}

async fn channel(
    node: &Served,
    pki: &Pki,
    chain: &str,
    key: &str,
) -> Result<Channel, tonic::transport::Error> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pki.root.cert_pem()))
        .identity(Identity::from_pem(chain, key))
        .domain_name("localhost");
    Channel::from_shared(format!("https://{}", node.addr))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

fn entry(key: &str, version: u64, value: &str) -> SignerStateEntry {
    let mut e = SignerStateEntry {
        version,
        key: key.into(),
        value: value.as_bytes().to_vec(),
        signature: vec![],
    };
    seed().sign(&mut e);
    e
}

/// Tenant A's seed as these tests play it: node key 1 (A is its public key) attesting the
/// state key of 32 × 0x0a.
fn seed() -> StateSigner {
    let mut one = [0u8; 32];
    one[31] = 1;
    StateSigner::new(&[0x0a; 32], &SecretKey::from_slice(&one).unwrap())
}

/// `answer` to the request `raw`, as the seed proves it.
fn proven(raw: &[u8], mut answer: HsmResponse) -> HsmResponse {
    seed().prove(raw, &mut answer);
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenants_signer_gets_requests_with_state_and_its_answers_are_stored_first() {
    let pki = Pki::new(&[A, B]);
    let node = start(&pki).await;
    node.state
        .merge(&[entry("nodes/a", 1, "{}"), entry("channels/x", 4, "{}")])
        .unwrap();

    let (chain, key) = pki.device(0, &A);
    let mut signer = client(&node, &pki, &chain, &key).await.unwrap();
    let mut stream = signer
        .stream_hsm_requests(Empty {})
        .await
        .unwrap()
        .into_inner();

    // A node thread asks for a signature and waits.
    let stage = node.stage.clone();
    let waiting =
        std::thread::spawn(move || stage.call(None, vec![0, 23], Duration::from_secs(30)));
    let req = stream.message().await.unwrap().unwrap();
    assert_eq!(req.raw, vec![0, 23]);
    let keys: Vec<String> = req.signer_state.iter().map(|e| e.key.clone()).collect();
    assert_eq!(
        keys,
        ["channels/x", "nodes/a"],
        "the first request carries the whole state"
    );

    signer
        .respond_hsm_request(proven(
            &req.raw,
            HsmResponse {
                request_id: req.request_id,
                raw: vec![1, 2, 3],
                signer_state: vec![entry("channels/x", 5, "{\"n\":1}")],
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert_eq!(waiting.join().unwrap(), Ok(vec![1, 2, 3]));
    assert_eq!(node.state.get("channels/x").unwrap().version, 5);

    // The next request carries only what changed since; a second answer is refused.
    let stage = node.stage.clone();
    let waiting = std::thread::spawn(move || stage.call(None, vec![9], Duration::from_secs(30)));
    let req2 = stream.message().await.unwrap().unwrap();
    assert!(req2.signer_state.is_empty(), "{:?}", req2.signer_state);
    let refusal = "policy failure: validate_payments: unbalanced payments";
    signer
        .respond_hsm_request(proven(
            &req2.raw,
            HsmResponse {
                request_id: req2.request_id,
                error: refusal.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert_eq!(
        waiting.join().unwrap(),
        Err(SignerError::Refused(refusal.into()))
    );
    let again = signer
        .respond_hsm_request(proven(
            &req.raw,
            HsmResponse {
                request_id: req.request_id,
                raw: vec![7],
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_device_and_the_nobody_identity_cannot_attach() {
    let pki = Pki::new(&[A, B]);
    let node = start(&pki).await;

    let (chain, key) = pki.device(1, &B);
    let refused = match client(&node, &pki, &chain, &key).await {
        Err(_) => true,
        Ok(mut c) => c.stream_hsm_requests(Empty {}).await.is_err(),
    };
    assert!(refused, "tenant B's device must not reach tenant A's node");

    let nobody = pki
        .users
        .issue_leaf(names::NOBODY_CN, &[], Validity::days(1))
        .unwrap();
    let nobody_chain = format!("{}{}", nobody.cert_pem, pki.users.cert_pem());
    let refused = match client(&node, &pki, &nobody_chain, &nobody.key_pem).await {
        Err(_) => true,
        Ok(mut c) => c.stream_hsm_requests(Empty {}).await.is_err(),
    };
    assert!(refused, "the nobody identity must not reach a node");
    assert_eq!(node.stage.signers(), 0);
}

/// Signs a unary call as Greenlight's clients do (signer-cli's signer: the gRPC frame ‖
/// u64be(ms), with the device's TLS key).
fn signed<T: prost::Message>(msg: T, key_pem: &str, ts_ms: u64) -> tonic::Request<T> {
    skylight_client::signed_request::RequestSigner::new(key_pem.as_bytes())
        .unwrap()
        .sign_at(msg, ts_ms)
        .unwrap()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_calls_must_be_signed_by_the_callers_device_key_and_are_shipped_to_the_signer() {
    use skylight_proto::greenlight::GlConfig;
    let pki = Pki::new(&[A, B]);
    let node = start(&pki).await;
    let (chain, key) = pki.device(0, &A);
    let mut c = client(&node, &pki, &chain, &key).await.unwrap();
    let msg = GlConfig {
        close_to_addr: "bcrt1qexample".into(),
    };

    // Unsigned: refused before the service.
    let st = c.configure(msg.clone()).await.unwrap_err();
    assert_eq!(st.code(), tonic::Code::Unauthenticated, "{st:?}");

    // Signed by this device: passes the check and reaches the (not yet built) call.
    let ts = now_ms();
    let st = c
        .configure(signed(msg.clone(), &key, ts))
        .await
        .unwrap_err();
    assert_eq!(st.code(), tonic::Code::Unimplemented, "{st:?}");

    // The same signed request again: a replay.
    let st = c
        .configure(signed(msg.clone(), &key, ts))
        .await
        .unwrap_err();
    assert_eq!(st.code(), tonic::Code::Unauthenticated, "{st:?}");
    assert!(st.message().contains("replay"), "{st:?}");

    // A signature that does not cover this body.
    let mut forged = signed(
        GlConfig {
            close_to_addr: "other".into(),
        },
        &key,
        now_ms(),
    );
    *forged.get_mut() = msg.clone();
    let st = c.configure(forged).await.unwrap_err();
    assert_eq!(st.code(), tonic::Code::Unauthenticated, "{st:?}");

    // Stale: ten minutes old.
    let st = c
        .configure(signed(msg.clone(), &key, now_ms() - 600_000))
        .await
        .unwrap_err();
    assert_eq!(st.code(), tonic::Code::Unauthenticated, "{st:?}");

    // The accepted call is over: its request no longer travels to signers (a signer matches
    // what it signs against the calls in progress).
    assert!(node.verifier.recent().is_empty());

    // A call in progress travels with each signing request, for the signer to match: an
    // Invoice, which waits (`signer_wait`) for a Lightning node that never runs here.
    let mut stream = c.stream_hsm_requests(Empty {}).await.unwrap().into_inner();
    let mut cln = skylight_proto::cln::node_client::NodeClient::new(
        channel(&node, &pki, &chain, &key).await.unwrap(),
    );
    let invoice_ts = now_ms();
    let invoice = signed(
        skylight_proto::cln::InvoiceRequest {
            label: "in-progress".into(),
            amount_msat: Some(skylight_proto::cln::AmountOrAny {
                value: Some(skylight_proto::cln::amount_or_any::Value::Any(true)),
            }),
            ..Default::default()
        },
        &key,
        invoice_ts,
    );
    let call = tokio::spawn(async move { cln.invoice(invoice).await });
    while node.verifier.recent().is_empty() {
        assert!(!call.is_finished(), "{:?}", call.await);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stage = node.stage.clone();
    std::thread::spawn(move || stage.call(None, vec![1], Duration::from_secs(5)));
    let req = stream.message().await.unwrap().unwrap();
    assert_eq!(req.requests.len(), 1);
    assert_eq!(req.requests[0].uri, "/cln.Node/Invoice");
    assert_eq!(req.requests[0].timestamp, invoice_ts);
    // Once the call ends (no node to make the invoice), its request is gone.
    assert!(call.await.unwrap().is_err());
    assert!(node.verifier.recent().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_computed_from_a_state_the_node_does_not_hold_is_not_released() {
    let pki = Pki::new(&[A, B]);
    let node = start(&pki).await;
    node.state
        .merge(&[entry("channels/x", 5, "{\"n\":5}")])
        .unwrap();
    let (chain, key) = pki.device(0, &A);
    let mut signer = client(&node, &pki, &chain, &key).await.unwrap();
    let mut stream = signer
        .stream_hsm_requests(Empty {})
        .await
        .unwrap()
        .into_inner();
    let ticket = node.stage.submit(None, vec![1]);
    let req = stream.message().await.unwrap().unwrap();

    // Another value at the stored version: a fork. Refused, and the request stays open.
    let st = signer
        .respond_hsm_request(proven(
            &req.raw,
            HsmResponse {
                request_id: req.request_id,
                raw: vec![9],
                signer_state: vec![entry("channels/x", 5, "{\"n\":\"fork\"}")],
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(st.code(), tonic::Code::FailedPrecondition, "{st:?}");
    assert!(node.stage.is_pending(ticket.request_id));
    assert_eq!(node.state.get("channels/x").unwrap().value, b"{\"n\":5}");

    // The writer record is bookkeeping: a conflict there alone does not block the answer.
    node.state.merge(&[entry("_WRITER", 3, "a")]).unwrap();
    signer
        .respond_hsm_request(proven(
            &req.raw,
            HsmResponse {
                request_id: req.request_id,
                raw: vec![7],
                signer_state: vec![entry("_WRITER", 3, "b")],
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert!(!node.stage.is_pending(ticket.request_id));
}
