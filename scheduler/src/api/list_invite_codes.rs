//! `Scheduler.ListInviteCodes`: the codes the calling tenant was given to share.

use std::sync::Arc;

use skylight_proto::scheduler::{InviteCode, ListInviteCodesRequest, ListInviteCodesResponse};
use tonic::Request;

use crate::auth;
use crate::error::Error;
use crate::state::{State, blocking};

/// Handles the RPC.
pub async fn handle(
    state: &Arc<State>,
    req: Request<ListInviteCodesRequest>,
) -> Result<ListInviteCodesResponse, Error> {
    let tenant = auth::tenant(&req, "ListInviteCodes")?;
    let st = state.clone();
    let codes = blocking(move || st.store.invites_owned_by(&tenant)).await?;
    Ok(ListInviteCodesResponse {
        invite_code_list: codes
            .into_iter()
            .map(|(code, is_redeemed)| InviteCode { code, is_redeemed })
            .collect(),
    })
}
