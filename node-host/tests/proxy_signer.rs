//! LDK's signer traits, through vls-protocol-client, over the stage, to the real signer core
//! (VLS) with the signer state kept by node-host: the path every signature will take.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bitcoin::Network;
use lightning_signer::lightning::sign::{
    ChannelSigner, NodeSigner, ReceiveAuthKey, Recipient, SignerProvider,
};
use skylight_node_host::proxy::StageTransport;
use skylight_node_host::signer_state::SignerState;
use skylight_node_host::stage::{SignerError, Stage};
use skylight_proto::greenlight::HsmRequest;
use skylight_signer_cli::keys::NodeKeys;
use skylight_signer_cli::secret::HsmSecret;
use skylight_signer_cli::signer::Signer;
use vls_protocol_client::KeysManagerClient;

/// A signer attached to the stage, answering on its own thread as signer-cli does over the
/// network, with node-host storing its state before each answer is released.
fn attach_signer(
    stage: Arc<Stage>,
    state: Arc<SignerState>,
    secret: HsmSecret,
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
                requests: vec![],
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
            stage.respond(staged.request_id, answer);
            answered += 1;
        }
        answered
    });
    (session, handle)
}

#[test]
fn ldk_signer_calls_cross_the_stage_to_vls_and_the_state_lands_in_node_host() {
    let dir = tempfile::tempdir().unwrap();
    let stage = Arc::new(Stage::new());
    let state = Arc::new(SignerState::open(&dir.path().join("state.redb")).unwrap());
    let secret = HsmSecret::from_bytes([0x41; 32]);
    let (session, signer) = attach_signer(stage.clone(), state.clone(), secret.clone());

    let transport = Arc::new(StageTransport::new(stage.clone(), Duration::from_secs(30)));
    let keys = KeysManagerClient::new(
        transport.clone(),
        "regtest".into(),
        None,
        None,
        ReceiveAuthKey([7; 32]),
    );
    // The node id LDK sees is the signer's (VLS native derivation, as Greenlight's).
    let expected = NodeKeys::derive(&secret, Network::Regtest).node_id;
    assert_eq!(keys.get_node_id(Recipient::Node).unwrap(), expected);
    assert!(
        !state.snapshot().is_empty(),
        "the new node's state is kept by node-host"
    );

    // A channel signer: NewChannel + GetChannelBasepoints, then a per-commitment point.
    let keys_id = keys.generate_channel_keys_id(false, 0);
    let channel = keys.derive_channel_signer(keys_id);
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let point = channel
        .get_per_commitment_point((1 << 48) - 1, &secp)
        .unwrap();
    assert_ne!(point, expected);
    let channel_entries = state
        .snapshot()
        .into_iter()
        .filter(|e| e.key.starts_with("channel"))
        .count();
    assert!(
        channel_entries > 0,
        "the channel's enforcement state is kept by node-host"
    );

    stage.detach(session);
    assert!(signer.join().unwrap() >= 4);
}

#[test]
fn with_no_signer_a_call_waits_its_deadline_then_fails_without_a_panic() {
    let stage = Arc::new(Stage::new());
    let transport = StageTransport::new(stage.clone(), Duration::from_millis(50));
    let result: Result<vls_protocol::msgs::HsmdInit2Reply, _> = vls_protocol_client::node_call(
        &transport,
        vls_protocol::msgs::HsmdInit2 {
            derivation_style: 0,
            network_name: vls_protocol::serde_bolt::WireString(b"regtest".to_vec()),
            dev_seed: None,
            dev_allowlist: vls_protocol::serde_bolt::Array::new(),
        },
    );
    assert_eq!(
        result.unwrap_err(),
        vls_protocol_client::Error::TransportTransient
    );
}
