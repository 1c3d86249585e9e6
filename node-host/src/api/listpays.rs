//! `ListPays`: the node's outgoing payments.

use skylight_proto::cln::{
    self as pb, listpays_pays::ListpaysPaysStatus, listpays_request::ListpaysStatus,
};

use super::Ctx;
use crate::node::NodeError;
use crate::store::payments::PaymentStatus as Status;

/// Answers `ListPays`.
pub async fn handle(
    ctx: &Ctx<'_>,
    req: pb::ListpaysRequest,
) -> Result<pb::ListpaysResponse, NodeError> {
    let all = ctx.node.payments()?;
    let wanted_status = req.status.and_then(|s| ListpaysStatus::try_from(s).ok());
    let hex_or_empty = |h: &Option<String>| h.as_deref().and_then(|h| hex::decode(h).ok());
    let pays = all
        .into_iter()
        .filter(|p| req.bolt11.as_ref().is_none_or(|b| b.trim() == p.bolt11))
        .filter(|p| {
            req.payment_hash
                .as_ref()
                .is_none_or(|h| hex::encode(h) == p.payment_hash)
        })
        .filter(|p| match wanted_status {
            None => true,
            Some(ListpaysStatus::Pending) => p.status == Status::Pending,
            Some(ListpaysStatus::Complete) => p.status == Status::Complete,
            Some(ListpaysStatus::Failed) => p.status == Status::Failed,
        })
        .map(|p| pb::ListpaysPays {
            payment_hash: hex::decode(&p.payment_hash).unwrap_or_default(),
            status: match p.status {
                Status::Pending => ListpaysPaysStatus::Pending,
                Status::Complete => ListpaysPaysStatus::Complete,
                Status::Failed => ListpaysPaysStatus::Failed,
            } as i32,
            destination: hex::decode(&p.destination).ok(),
            created_at: p.created_at,
            bolt11: Some(p.bolt11.clone()),
            amount_msat: Some(pb::Amount {
                msat: p.amount_msat,
            }),
            amount_sent_msat: p.amount_sent_msat.map(|msat| pb::Amount { msat }),
            completed_at: p.completed_at,
            preimage: hex_or_empty(&p.preimage),
            number_of_parts: Some(1),
            created_index: Some(p.created_index),
            ..Default::default()
        })
        .collect();
    Ok(pb::ListpaysResponse { pays })
}
