//! `Scheduler.GetNodeInfo`: where the caller's node is, without starting it. With `wait`,
//! long-polls until it is scheduled (Greenlight's signer waits this way); otherwise an
//! empty `grpc_uri` means it is not running. An exported node is refused: it never runs.

use std::sync::Arc;

use skylight_proto::scheduler::{NodeInfoRequest, NodeInfoResponse};
use tonic::Request;

use crate::auth;
use crate::error::Error;
use crate::state::State;

/// Handles the RPC.
pub async fn handle(
    state: &Arc<State>,
    req: Request<NodeInfoRequest>,
) -> Result<NodeInfoResponse, Error> {
    let tenant = auth::tenant_of(state.calls.admit("GetNodeInfo", &req)?, "GetNodeInfo")?;
    let req = req.into_inner();
    auth::same_tenant(&tenant, &req.node_id)?;
    // A signer long-polling for an exported node would wait for ever: say why instead.
    state.nodes.refuse_exported(&tenant).await?;
    // A wait is bounded: a caller is told the node is not running and asks again, rather
    // than holding a call open for ever.
    let running = tokio::time::timeout(
        state.config.limits.node_info_max_wait,
        state.nodes.info(&tenant, req.wait),
    )
    .await
    .unwrap_or(None);
    Ok(NodeInfoResponse {
        node_id: tenant.to_vec(),
        grpc_uri: running.as_ref().map(|r| r.uri.clone()).unwrap_or_default(),
        session_id: running.map(|r| r.session_id).unwrap_or_default(),
    })
}
