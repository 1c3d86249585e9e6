//! `Scheduler.MaybeUpgrade`: the signer's first call. Records its version and startup
//! messages; returns the version it replaces. Greenlight's signer stops its run loop on any
//! error here but UNAVAILABLE, so this must succeed for every registered tenant.

use std::sync::Arc;

use skylight_proto::scheduler::{UpgradeRequest, UpgradeResponse};
use tonic::Request;

use crate::auth;
use crate::error::Error;
use crate::state::{State, blocking};

/// Handles the RPC.
pub async fn handle(
    state: &Arc<State>,
    req: Request<UpgradeRequest>,
) -> Result<UpgradeResponse, Error> {
    let tenant = auth::tenant(&req, "MaybeUpgrade")?;
    let req = req.into_inner();
    let msgs = super::signer_facts(&req.signer_version, &[], &req.startupmsgs)?;
    let msgs = (!msgs.is_empty()).then_some(msgs);
    let st = state.clone();
    let version = req.signer_version.clone();
    let old_version = blocking(move || st.store.upgrade_signer(&tenant, &version, msgs)).await?;
    if old_version != req.signer_version {
        tracing::info!(node_id = %hex::encode(tenant), from = %old_version, to = %req.signer_version, "signer version changed");
    }
    Ok(UpgradeResponse { old_version })
}
