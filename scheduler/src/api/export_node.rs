//! `Scheduler.ExportNode`: the caller's node, packed and sealed to its key, at a URL.

use std::sync::Arc;

use skylight_proto::scheduler::{ExportNodeRequest, ExportNodeResponse};
use tonic::Request;

use crate::auth;
use crate::error::Error;
use crate::state::State;

/// Handles the RPC.
pub async fn handle(
    state: &Arc<State>,
    req: Request<ExportNodeRequest>,
) -> Result<ExportNodeResponse, Error> {
    let tenant = auth::tenant(&req, "ExportNode")?;
    // In a task of its own: a caller that goes away does not stop the export half-way;
    // it finishes, and the next call returns its URL.
    let task = {
        let state = state.clone();
        tokio::spawn(async move { state.exports.export(&state.nodes, &tenant).await })
    };
    let url = task
        .await
        .map_err(|e| Error::Internal(format!("export task: {e}")))??;
    Ok(ExportNodeResponse { url })
}
