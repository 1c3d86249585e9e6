//! `Scheduler.Schedule`: start the caller's node if needed and say where it is.

use std::sync::Arc;

use skylight_proto::scheduler::{NodeInfoResponse, ScheduleRequest};
use tonic::Request;

use crate::auth;
use crate::error::Error;
use crate::state::State;

/// Handles the RPC.
pub async fn handle(
    state: &Arc<State>,
    req: Request<ScheduleRequest>,
) -> Result<NodeInfoResponse, Error> {
    let tenant = auth::tenant_of(state.calls.admit("Schedule", &req)?, "Schedule")?;
    auth::same_tenant(&tenant, &req.get_ref().node_id)?;
    let running = state.nodes.schedule(&tenant).await?;
    Ok(NodeInfoResponse {
        node_id: tenant.to_vec(),
        grpc_uri: running.uri,
        session_id: running.session_id,
    })
}
