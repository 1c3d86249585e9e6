//! `Scheduler.AddOutgoingWebhook`: a new webhook for the calling tenant; its id and its
//! secret, which is shown here and on rotation only.

use std::sync::Arc;

use skylight_proto::scheduler::{AddOutgoingWebhookRequest, AddOutgoingWebhookResponse};
use tonic::Request;

use crate::auth;
use crate::error::Error;
use crate::state::{State, blocking};
use crate::webhooks::{sign, target};

/// Handles the RPC.
pub async fn handle(
    state: &Arc<State>,
    req: Request<AddOutgoingWebhookRequest>,
) -> Result<AddOutgoingWebhookResponse, Error> {
    let tenant = auth::tenant(&req, "AddOutgoingWebhook")?;
    let req = req.into_inner();
    auth::same_tenant(&tenant, &req.node_id)?;
    let settings = &state.config.webhooks;
    let url = target::parse(&req.uri, settings)?;
    target::check_reachable(&url, settings).await?;
    let secret = sign::new_secret().map_err(|e| Error::Internal(format!("randomness: {e}")))?;
    let (st, uri, s) = (state.clone(), url.to_string(), secret.clone());
    let id = blocking(move || st.store.add_webhook(&tenant, &uri, &s)).await?;
    state.webhooks.poke(id);
    tracing::info!(node_id = %hex::encode(tenant), webhook = id, host = %url.host_str().unwrap_or(""), "webhook added");
    Ok(AddOutgoingWebhookResponse {
        id: id as i64,
        secret,
    })
}
