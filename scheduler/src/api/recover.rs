//! `Scheduler.Recover`: a registered tenant proves its node key again and gets a new device
//! certificate. Earlier certificates stay valid.

use std::sync::Arc;

use skylight_certs::{Authority, names};
use skylight_proto::scheduler::{ChallengeScope, RecoveryRequest, RecoveryResponse};
use tonic::Request;

use crate::error::Error;
use crate::proof;
use crate::state::{State, blocking};

/// Handles the RPC.
pub async fn handle(
    state: &Arc<State>,
    req: Request<RecoveryRequest>,
) -> Result<RecoveryResponse, Error> {
    let caller = state.calls.admit("Recover", &req)?;
    let req = req.into_inner();
    let node = proof::parse_node_id(&req.node_id)?;
    let node_id = node.serialize();
    let node_hex = hex::encode(node_id);

    state
        .challenges
        .redeem(&req.challenge, ChallengeScope::Recover, &node_id)?;
    proof::verify(&node, &req.challenge, &req.signature)?;
    let csr = super::device_csr(&req.csr, &node_id)?;
    let device = names::recovered_device(&req.challenge);

    let st = state.clone();
    let chain = blocking(move || {
        let Some(ca) = st.store.tenant_ca(&node_id)? else {
            return Err(Error::NotFound(format!(
                "node {node_hex} is not registered here; register it first"
            )));
        };
        let tenant_ca = Authority::load(&ca.cert_pem, &ca.key_pem)
            .map_err(|e| Error::Internal(format!("tenant CA of {node_hex}: {e}")))?;
        let (chain, record) = super::issue_device(&st, &tenant_ca, &csr, &node_hex, &device)?;
        st.store.add_device(&node_id, &device, &record)?;
        Ok(chain)
    })
    .await?;
    tracing::info!(node_id = %hex::encode(node_id), via = %caller.describe(), "tenant recovered a device");
    Ok(RecoveryResponse {
        device_cert: chain,
        device_key: String::new(),
        rune: String::new(),
        creds: vec![],
    })
}
