//! A signer attached to a stage in process: it answers as signer-cli does over the
//! network, with node-host storing the signer's state before each answer is released.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;

use bitcoin::Network;
use skylight_node_host::signer_state::SignerState;
use skylight_node_host::stage::{SignerError, Stage};
use skylight_proto::greenlight::HsmRequest;
use skylight_signer_cli::secret::HsmSecret;
use skylight_signer_cli::signer::Signer;

/// Attaches a signer with `secret`; returns its session (to detach it) and its thread,
/// which ends with the number of requests it answered once detached.
pub fn attach_signer(
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
