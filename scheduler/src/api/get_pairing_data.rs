//! `Pairing.GetPairingData`: a device of a tenant reads what a waiting new device asks for,
//! to show it before approving.

use std::sync::Arc;

use skylight_proto::scheduler::{GetPairingDataRequest, GetPairingDataResponse};
use tonic::Request;

use crate::auth;
use crate::error::Error;
use crate::state::State;

/// Handles the RPC.
pub async fn handle(
    state: &Arc<State>,
    req: Request<GetPairingDataRequest>,
) -> Result<GetPairingDataResponse, Error> {
    auth::tenant(&req, "GetPairingData")?;
    let id = req.into_inner().device_id;
    state.pairings.data(&id).ok_or_else(|| {
        Error::NotFound(format!(
            "no new device {id} waits to be paired (it may have given up, or not started yet)"
        ))
    })
}
