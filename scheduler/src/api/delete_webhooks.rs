//! `Scheduler.DeleteWebhooks`: deletes some of the calling tenant's webhooks, with what was
//! still to be delivered to them. Every id must be the tenant's, or nothing is deleted.

use std::sync::Arc;

use skylight_proto::scheduler::DeleteOutgoingWebhooksRequest;
use tonic::Request;

use crate::auth;
use crate::error::Error;
use crate::state::{State, blocking};

/// Handles the RPC.
pub async fn handle(
    state: &Arc<State>,
    req: Request<DeleteOutgoingWebhooksRequest>,
) -> Result<(), Error> {
    let tenant = auth::tenant(&req, "DeleteWebhooks")?;
    let req = req.into_inner();
    auth::same_tenant(&tenant, &req.node_id)?;
    let ids = super::webhook_ids(&req.ids)?;
    let (st, deleted) = (state.clone(), ids.clone());
    blocking(move || st.store.delete_webhooks(&tenant, &deleted)).await?;
    for id in &ids {
        // Its worker wakes, finds the webhook gone, and ends.
        state.webhooks.poke(*id);
    }
    tracing::info!(node_id = %hex::encode(tenant), ?ids, "webhooks deleted");
    Ok(())
}
