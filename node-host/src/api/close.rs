//! `Close`: a cooperative close, whose transaction both signers sign; with
//! `unilateraltimeout` (seconds, as CLN), a force close if the cooperative one has not
//! completed by then, or at once if the peer is not connected.

use lightning_signer::bitcoin::consensus::encode::serialize;
use skylight_proto::cln::{self as pb, close_response::CloseType};

use super::Ctx;
use super::convert::txid_bytes;
use crate::node::{ChannelRef, CloseKind, NodeError};

/// Answers `Close`.
pub async fn handle(ctx: &Ctx<'_>, req: pb::CloseRequest) -> Result<pb::CloseResponse, NodeError> {
    let invalid = |m: &str| NodeError::Invalid(m.to_string());
    // CLN: 0 waits for the cooperative close for ever.
    let force_after = req
        .unilateraltimeout
        .filter(|t| *t > 0)
        .map(|t| std::time::Duration::from_secs(t.into()));
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
    let closed = ctx.node.close(&ChannelRef(req.id), force_after).await?;
    Ok(pb::CloseResponse {
        item_type: match closed.kind {
            CloseKind::Mutual => CloseType::Mutual,
            CloseKind::Unilateral => CloseType::Unilateral,
            CloseKind::Unopened => CloseType::Unopened,
        } as i32,
        txs: closed.tx.iter().map(serialize).collect(),
        txids: closed
            .tx
            .iter()
            .map(|t| txid_bytes(&t.compute_txid()))
            .collect(),
    })
}
