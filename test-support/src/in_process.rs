//! A signer attached to a stage in process: it answers as signer-cli does over the
//! network, with node-host storing the signer's state before each answer is released.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use bitcoin::Network;
use lightning_signer::lightning::sign::ReceiveAuthKey;
use skylight_client::secret::HsmSecret;
use skylight_client::signer::Signer;
use skylight_node_host::server::signed_requests::Verifier;
use skylight_node_host::signer_link::channel::Channels;
use skylight_node_host::signer_link::keys::RemoteKeys;
use skylight_node_host::signer_link::service::RETRY_TEMPORARY;
use skylight_node_host::signer_link::stage::{Delivery, SignerError, Stage};
use skylight_node_host::signer_link::transport::StageTransport;
use skylight_node_host::store::kv::NodeKv;
use skylight_node_host::store::kv::redb::RedbKv;
use skylight_node_host::store::signer_state::SignerState;
use skylight_proto::greenlight::HsmRequest;
use vls_protocol_client::KeysManagerClient;

/// Attaches a signer with `secret`; returns its session (to detach it) and its thread,
/// which ends with the number of requests it answered once detached.
pub fn attach_signer(
    stage: Arc<Stage>,
    state: Arc<SignerState>,
    secret: HsmSecret,
) -> (u64, JoinHandle<u64>) {
    attach_signer_shipping(stage, state, secret, None, Arc::default())
}

/// As [`attach_signer`], shipping each request with the signed client requests `verifier`
/// holds (as node-host's hsm stream does), and counting answers in `answered`.
pub fn attach_signer_shipping(
    stage: Arc<Stage>,
    state: Arc<SignerState>,
    secret: HsmSecret,
    verifier: Option<Arc<Verifier>>,
    answered_count: Arc<AtomicU64>,
) -> (u64, JoinHandle<u64>) {
    let mut attachment = stage.attach();
    let session = attachment.session;
    let handle = std::thread::spawn(move || {
        let mut signer = Signer::new(&secret, Network::Regtest);
        let mut sent = BTreeMap::new();
        let mut answered = 0;
        while let Some(staged) = attachment.requests.blocking_recv() {
            let request = HsmRequest {
                request_id: staged.request_id,
                context: staged.context,
                raw: staged.raw,
                signer_state: state.changes_since(&mut sent),
                requests: verifier.as_ref().map(|v| v.recent()).unwrap_or_default(),
            };
            let response = signer.handle(&request);
            state.merge(&response.signer_state).expect("state stored");
            for e in &response.signer_state {
                sent.insert(e.key.clone(), e.version);
            }
            signer.acknowledged(&response.signer_state);
            let answer = if response.error.is_empty() {
                Ok(response.raw)
            } else {
                Err(SignerError::from_signer_text(&response.error))
            };
            if stage.respond(staged.request_id, answer) == Delivery::KeptPending {
                // As node-host's hsm stream does with a temporary failure: ask again soon.
                let (stage, id) = (stage.clone(), staged.request_id);
                std::thread::spawn(move || {
                    std::thread::sleep(RETRY_TEMPORARY);
                    stage.resend(id);
                });
            }
            answered += 1;
            answered_count.fetch_add(1, Ordering::Relaxed);
        }
        answered
    });
    (session, handle)
}

/// A stage, node-host's state store and an attached signer with `secret`, in a temporary
/// directory.
pub struct Linked {
    /// Holds the state store and anything a test puts beside it.
    pub dir: tempfile::TempDir,
    /// The stage.
    pub stage: Arc<Stage>,
    /// node-host's copy of the signer state.
    pub state: Arc<SignerState>,
    /// The node's store the state is in (in `dir`), for the rest of a test's node.
    pub kv: Arc<dyn NodeKv>,
    /// The signer's session, to detach it.
    pub session: u64,
    /// The signer's thread.
    pub signer: JoinHandle<u64>,
}

/// Links a signer with `secret` to a new stage.
pub fn linked(secret: &HsmSecret) -> Linked {
    let dir = tempfile::tempdir().unwrap();
    let stage = Arc::new(Stage::new());
    let kv = RedbKv::shared(&dir.path().join("ldk.redb")).unwrap();
    let state = Arc::new(SignerState::open(kv.clone()).unwrap());
    let (session, signer) = attach_signer(stage.clone(), state.clone(), secret.clone());
    Linked {
        dir,
        stage,
        state,
        kv,
        session,
        signer,
    }
}

/// A transport over `stage` whose calls wait at most `deadline`, and a signer client on it
/// (its HsmdInit2 answered by the attached signer).
pub fn signer_client(
    stage: &Arc<Stage>,
    deadline: Duration,
) -> (Arc<StageTransport>, KeysManagerClient) {
    let transport = Arc::new(StageTransport::new(stage.clone(), deadline));
    let client = KeysManagerClient::new(
        transport.clone(),
        "regtest".into(),
        None,
        None,
        ReceiveAuthKey([7; 32]),
    );
    (transport, client)
}

/// A node's keys over `stage` (calls waiting at most `deadline`), its channel counter and
/// its channel signers' records in `kv`; the init answered by the attached signer.
pub fn remote_keys(stage: &Arc<Stage>, deadline: Duration, kv: Arc<dyn NodeKv>) -> RemoteKeys {
    let (transport, client) = signer_client(stage, deadline);
    let channels = Channels::open(&client, stage.clone(), deadline, kv.clone()).unwrap();
    RemoteKeys::new(client, transport, kv, Arc::new(channels)).unwrap()
}
