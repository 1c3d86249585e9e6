//! `Scheduler.RotateOutgoingWebhookSecret`: a new secret for one of the calling tenant's
//! webhooks; the old one signs nothing more (attempts from now on, retries included, are
//! signed with the new one).

use std::sync::Arc;

use skylight_proto::scheduler::{RotateOutgoingWebhookSecretRequest, WebhookSecretResponse};
use tonic::Request;

use crate::auth;
use crate::error::Error;
use crate::state::{State, blocking};
use crate::webhooks::sign;

/// Handles the RPC.
pub async fn handle(
    state: &Arc<State>,
    req: Request<RotateOutgoingWebhookSecretRequest>,
) -> Result<WebhookSecretResponse, Error> {
    let tenant = auth::tenant(&req, "RotateOutgoingWebhookSecret")?;
    let req = req.into_inner();
    auth::same_tenant(&tenant, &req.node_id)?;
    let id = super::webhook_ids(&[req.webhook_id])?[0];
    let secret = sign::new_secret().map_err(|e| Error::Internal(format!("randomness: {e}")))?;
    let (st, s) = (state.clone(), secret.clone());
    blocking(move || st.store.rotate_webhook_secret(&tenant, id, &s)).await?;
    tracing::info!(node_id = %hex::encode(tenant), webhook = id, "webhook secret rotated");
    Ok(WebhookSecretResponse { secret })
}
