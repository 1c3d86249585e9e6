//! `Scheduler.Register`: a new tenant proves its node key and gets its first device
//! certificate.

use std::sync::Arc;

use skylight_certs::{Validity, names};
use skylight_proto::scheduler::{ChallengeScope, RegistrationRequest, RegistrationResponse};
use tonic::Request;

use crate::error::Error;
use crate::state::{State, blocking};
use crate::store::NewTenant;
use crate::store::records::{TenantCaRecord, TenantRecord};
use crate::{invite, proof};

/// Handles the RPC.
pub async fn handle(
    state: &Arc<State>,
    req: Request<RegistrationRequest>,
) -> Result<RegistrationResponse, Error> {
    let caller = state.calls.admit("Register", &req)?;
    let req = req.into_inner();
    let node = proof::parse_node_id(&req.node_id)?;
    let node_id = node.serialize();
    let node_hex = hex::encode(node_id);

    if req.network != state.config.network {
        return Err(Error::InvalidArgument(format!(
            "this scheduler serves {}, but the signer is set up for {:?}",
            state.config.network, req.network
        )));
    }
    state
        .challenges
        .redeem(&req.challenge, ChallengeScope::Register, &node_id)?;
    proof::verify(&node, &req.challenge, &req.signature)?;
    let csr = super::device_csr(&req.csr, &node_id)?;

    let startup_msgs = super::signer_facts(&req.signer_proto, &req.init_msg, &req.startupmsgs)?;

    let code = invite::normalize(&req.invite_code);
    let code = (!code.is_empty()).then_some(code);
    match &code {
        None if state.config.require_invite => {
            return Err(Error::PermissionDenied(
                "registering on this scheduler needs an invite code; ask the operator or an existing user for one"
                    .into(),
            ));
        }
        // A cheap look first, so a wrong guess costs no key generation.
        Some(c) => {
            let (st, c) = (state.clone(), c.clone());
            blocking(move || st.store.invite_usable(&c)).await?;
        }
        None => {}
    }

    let record = TenantRecord {
        node_id: node_hex.clone(),
        network: req.network.clone(),
        signer_version: req.signer_proto.clone(),
        init_msg: hex::encode(&req.init_msg),
        startup_msgs,
        invite_code: code.clone(),
        registered_at: crate::store::now(),
        upgraded_at: None,
    };
    let st = state.clone();
    let chain = blocking(move || {
        // Key generation and signing first, outside the write transaction; if the node
        // turns out to be registered already, this CA is simply dropped.
        let tenant_ca = st.users_ca.new_child_ca(
            &names::tenant_ca_cn(&node_hex),
            Validity::days(st.config.ca_days),
        )?;
        let (chain, device) =
            super::issue_device(&st, &tenant_ca, &csr, &node_hex, names::REGISTER_DEVICE)?;
        let tenant = NewTenant {
            node_id,
            record,
            ca: TenantCaRecord {
                cert_pem: tenant_ca.cert_pem().to_string(),
                key_pem: tenant_ca.key_pem().to_string(),
            },
            device_name: names::REGISTER_DEVICE.to_string(),
            device,
        };
        st.store.register_within(
            tenant,
            code.as_deref(),
            st.config.invites_per_tenant,
            st.config.limits.max_tenants,
        )?;
        Ok(chain)
    })
    .await?;
    tracing::info!(node_id = %hex::encode(node_id), via = %caller.describe(), "tenant registered");
    metrics::counter!(crate::metrics::REGISTRATIONS).increment(1);
    Ok(RegistrationResponse {
        device_cert: chain,
        // Empty: the client made its own key and sent a CSR; it keeps the key.
        device_key: String::new(),
        rune: String::new(),
        creds: vec![],
    })
}
