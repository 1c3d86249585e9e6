//! `Scheduler.ListOutgoingWebhooks`: the calling tenant's webhooks, without their secrets.

use std::sync::Arc;

use skylight_proto::scheduler::{
    ListOutgoingWebhooksRequest, ListOutgoingWebhooksResponse, Webhook,
};
use tonic::Request;

use crate::auth;
use crate::error::Error;
use crate::state::{State, blocking};

/// Handles the RPC.
pub async fn handle(
    state: &Arc<State>,
    req: Request<ListOutgoingWebhooksRequest>,
) -> Result<ListOutgoingWebhooksResponse, Error> {
    let tenant = auth::tenant(&req, "ListOutgoingWebhooks")?;
    auth::same_tenant(&tenant, &req.get_ref().node_id)?;
    let st = state.clone();
    let webhooks = blocking(move || st.store.webhooks_of(&tenant)).await?;
    Ok(ListOutgoingWebhooksResponse {
        outgoing_webhooks: webhooks
            .into_iter()
            .map(|(id, w)| Webhook {
                id: id as i64,
                uri: w.uri,
            })
            .collect(),
    })
}
