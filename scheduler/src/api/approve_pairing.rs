//! `Pairing.ApprovePairing`: a device of a tenant approves a waiting new device. The
//! approval goes to the tenant's signer (`SignerRequestsStream`), which checks the approving
//! device's signature, rune and timestamp and mints the new device's rune; then the
//! scheduler signs the new device's CSR under the tenant's CA, as
//! `/users/<node id>/<device name>`, and the new device's `PairDevice` returns.

use std::sync::Arc;
use std::time::Duration;

use skylight_certs::{Authority, DeviceCsr};
use skylight_proto::scheduler::{
    ApprovePairingRequest, PairDeviceResponse, SignerRequest, signer_request, signer_response,
};
use tonic::Request;

use crate::auth;
use crate::error::Error;
use crate::state::{State, blocking};

/// How long the signer has to answer.
pub const SIGNER_WAIT: Duration = Duration::from_secs(30);

/// Handles the RPC.
pub async fn handle(state: &Arc<State>, req: Request<ApprovePairingRequest>) -> Result<(), Error> {
    let tenant = auth::tenant(&req, "ApprovePairing")?;
    let approval = req.into_inner();
    super::pair_device::check_name(&approval.device_name)?;
    let Some(asked) = state.pairings.request(&approval.device_id) else {
        return Err(Error::NotFound(format!(
            "no new device {} waits to be paired",
            approval.device_id
        )));
    };
    let outcome = approve(state, tenant, &approval, &asked.csr).await;
    let finished = match &outcome {
        Ok(done) => Ok(done.clone()),
        Err(Error::PermissionDenied(m)) => Err(Error::PermissionDenied(m.clone())),
        Err(Error::DeadlineExceeded(m)) => Err(Error::DeadlineExceeded(m.clone())),
        // Anything else (no signer attached, say) leaves the new device waiting: another
        // try may succeed.
        Err(_) => return outcome.map(|_| ()),
    };
    if !state.pairings.complete(&approval.device_id, finished) {
        return Err(Error::NotFound(
            "the new device stopped waiting before the approval completed".into(),
        ));
    }
    outcome.map(|_| ())
}

async fn approve(
    state: &Arc<State>,
    tenant: [u8; 33],
    approval: &ApprovePairingRequest,
    csr: &[u8],
) -> Result<PairDeviceResponse, Error> {
    let node_hex = hex::encode(tenant);
    let request = SignerRequest {
        request_id: 0,
        request: Some(signer_request::Request::ApprovePairing(approval.clone())),
    };
    let Some((id, answer)) = state.signers.ask(&tenant, request) else {
        return Err(Error::Unavailable(
            "no signer of this node is attached to the scheduler: start it (`signer-cli run`) and approve again".into(),
        ));
    };
    let answer = match tokio::time::timeout(SIGNER_WAIT, answer).await {
        Ok(Ok(a)) => a,
        Ok(Err(_)) | Err(_) => {
            state.signers.forget(&tenant, id);
            return Err(Error::DeadlineExceeded(format!(
                "the node's signer did not answer the approval within {} s",
                SIGNER_WAIT.as_secs()
            )));
        }
    };
    let rune = match answer.response {
        Some(signer_response::Response::ApprovePairing(r))
            if r.device_id == approval.device_id && r.node_id == tenant && !r.rune.is_empty() =>
        {
            r.rune
        }
        _ => {
            return Err(Error::PermissionDenied(
                "the node's signer refused the pairing (the approving device's signature, rune or clock did not check out; its log says which)".into(),
            ));
        }
    };
    let csr = DeviceCsr::from_pem(csr)?;
    let st = state.clone();
    let name = approval.device_name.clone();
    let chain = blocking(move || {
        if st.store.devices(&tenant)?.iter().any(|(n, _)| n == &name) {
            return Err(Error::AlreadyExists(format!(
                "node {node_hex} has a device named {name:?} already: pair with another name"
            )));
        }
        let Some(ca) = st.store.tenant_ca(&tenant)? else {
            return Err(Error::NotFound(format!(
                "node {node_hex} is not registered here"
            )));
        };
        let tenant_ca = Authority::load(&ca.cert_pem, &ca.key_pem)
            .map_err(|e| Error::Internal(format!("tenant CA of {node_hex}: {e}")))?;
        let (chain, record) = super::issue_device(&st, &tenant_ca, &csr, &node_hex, &name)?;
        st.store.add_device(&tenant, &name, &record)?;
        Ok(chain)
    })
    .await?;
    tracing::info!(node_id = %hex::encode(tenant), device = %approval.device_name, "paired a new device");
    Ok(PairDeviceResponse {
        device_id: approval.device_id.clone(),
        device_cert: chain,
        device_key: String::new(),
        rune,
        creds: vec![],
    })
}
