//! `ListInvoices`: the node's invoices and whether they were paid.

use skylight_proto::cln::{self as pb, listinvoices_invoices::ListinvoicesInvoicesStatus};

use super::Ctx;
use crate::node::NodeError;

/// Answers `ListInvoices`.
pub async fn handle(
    ctx: &Ctx<'_>,
    req: pb::ListinvoicesRequest,
) -> Result<pb::ListinvoicesResponse, NodeError> {
    if req.offer_id.is_some() {
        return Err(NodeError::Invalid(
            "offers (BOLT12) are not supported".into(),
        ));
    }
    let all = ctx.node.invoices()?;
    let now = crate::now_secs();
    let invoices = all
        .into_iter()
        .filter(|i| req.label.as_ref().is_none_or(|l| *l == i.label))
        .filter(|i| req.invstring.as_ref().is_none_or(|s| s.trim() == i.bolt11))
        .filter(|i| {
            req.payment_hash
                .as_ref()
                .is_none_or(|h| hex::encode(h) == i.payment_hash)
        })
        .map(|i| {
            let status = match (&i.paid, i.expires_at <= now) {
                (Some(_), _) => ListinvoicesInvoicesStatus::Paid,
                (None, true) => ListinvoicesInvoicesStatus::Expired,
                (None, false) => ListinvoicesInvoicesStatus::Unpaid,
            };
            pb::ListinvoicesInvoices {
                label: i.label.clone(),
                description: Some(i.description.clone()),
                payment_hash: hex::decode(&i.payment_hash).unwrap_or_default(),
                status: status as i32,
                expires_at: i.expires_at,
                amount_msat: i.amount_msat.map(|msat| pb::Amount { msat }),
                bolt11: Some(i.bolt11.clone()),
                pay_index: i.paid.as_ref().map(|p| p.pay_index),
                amount_received_msat: i.paid.as_ref().map(|p| pb::Amount {
                    msat: p.amount_received_msat,
                }),
                paid_at: i.paid.as_ref().map(|p| p.paid_at),
                payment_preimage: i.paid.as_ref().and_then(|p| hex::decode(&p.preimage).ok()),
                created_index: i.created_index,
                ..Default::default()
            }
        })
        .collect();
    Ok(pb::ListinvoicesResponse { invoices })
}
