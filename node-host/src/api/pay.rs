//! `Pay`: pay a BOLT11 invoice over the node's channels; the signer approves it first, and
//! only if a device of the tenant signed this Pay request (see the node's `pay`). A payment
//! is retried for `retry_for` seconds (CLN's default 60), route-finding included: a channel
//! coming back after a wake-up, or whose balance is settling, is waited for.

use skylight_proto::cln::{self as pb, pay_response::PayStatus};

use super::Ctx;
use super::convert::msat;
use crate::node::{NodeError, RETRY_FOR};

/// Answers `Pay`.
pub async fn handle(ctx: &Ctx<'_>, req: pb::PayRequest) -> Result<pb::PayResponse, NodeError> {
    let paid = ctx
        .node
        .pay(
            &req.bolt11,
            req.amount_msat.map(|a| a.msat),
            req.retry_for
                .map_or(RETRY_FOR, |s| std::time::Duration::from_secs(s.into())),
        )
        .await?;
    let p = &paid.payment;
    Ok(pb::PayResponse {
        payment_preimage: p
            .preimage
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .unwrap_or_default(),
        destination: Some(paid.destination.serialize().to_vec()),
        payment_hash: paid.hash.to_vec(),
        created_at: p.created_at as f64,
        parts: 1,
        amount_msat: msat(paid.amount_msat),
        amount_sent_msat: msat(p.amount_sent_msat.unwrap_or(paid.amount_msat)),
        warning_partial_completion: None,
        status: PayStatus::Complete as i32,
    })
}
