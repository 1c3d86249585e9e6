//! `Close`: a cooperative close, whose transaction both signers sign. Force closes are not
//! built (their sweeps cannot be signed yet), and are refused rather than half-done.

use lightning_signer::bitcoin::consensus::encode::serialize;
use skylight_proto::cln::{self as pb, close_response::CloseType};

use super::Ctx;
use super::convert::txid_bytes;
use crate::node::{ChannelRef, NodeError};

/// Answers `Close`.
pub async fn handle(ctx: &Ctx<'_>, req: pb::CloseRequest) -> Result<pb::CloseResponse, NodeError> {
    let invalid = |m: &str| NodeError::Invalid(m.to_string());
    if req.unilateraltimeout.is_some_and(|t| t > 0) {
        return Err(NodeError::Precondition(
            "force (unilateral) close is not built in this version: its on-chain sweeps cannot be signed yet; omit unilateraltimeout for a cooperative close".into(),
        ));
    }
    if req.destination.is_some() {
        return Err(invalid(
            "destination is not supported: the funds return to the node's wallet, which the signer recognises",
        ));
    }
    if req.fee_negotiation_step.is_some() || req.wrong_funding.is_some() || !req.feerange.is_empty()
    {
        return Err(invalid(
            "fee_negotiation_step, wrong_funding and feerange are not supported",
        ));
    }
    let closed = ctx.node.close(&ChannelRef(req.id)).await?;
    Ok(pb::CloseResponse {
        item_type: if closed.funded {
            CloseType::Mutual
        } else {
            CloseType::Unopened
        } as i32,
        txs: closed.tx.iter().map(serialize).collect(),
        txids: closed
            .tx
            .iter()
            .map(|t| txid_bytes(&t.compute_txid()))
            .collect(),
    })
}
