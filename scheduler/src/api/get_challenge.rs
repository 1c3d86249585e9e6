//! `Scheduler.GetChallenge`: a single-use challenge bound to scope and node id.

use skylight_proto::scheduler::{ChallengeRequest, ChallengeResponse, ChallengeScope};
use tonic::Request;

use crate::error::Error;
use crate::proof;
use crate::state::State;

/// Handles the RPC.
pub async fn handle(
    state: &State,
    req: Request<ChallengeRequest>,
) -> Result<ChallengeResponse, Error> {
    state.calls.admit("GetChallenge", &req)?;
    let req = req.into_inner();
    let scope = ChallengeScope::try_from(req.scope).map_err(|_| {
        Error::InvalidArgument(format!(
            "unknown challenge scope {}; use REGISTER (0) or RECOVER (1)",
            req.scope
        ))
    })?;
    let node_id = proof::parse_node_id(&req.node_id)?.serialize();
    let challenge = state.challenges.issue(scope, node_id)?;
    Ok(ChallengeResponse {
        challenge: challenge.to_vec(),
    })
}
