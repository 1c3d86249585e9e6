//! `Pay`: pay a BOLT11 invoice over the node's channels.
//!
//! The signer is asked first (`PreapproveInvoice`): it approves only an invoice that a Pay
//! request signed by one of the tenant's devices names (the signed request travels with
//! the signing request). A refusal ends the call with the signer's reason before any HTLC
//! exists; without this step VLS would refuse the commitment later and leave the HTLC
//! hanging.

use std::str::FromStr;
use std::time::Duration;

use lightning_signer::bitcoin::hashes::Hash;
use lightning_signer::lightning::ln::channelmanager::{PaymentId, Retry};
use lightning_signer::lightning::routing::router::RouteParametersConfig;
use lightning_signer::lightning_invoice::Bolt11Invoice;
use skylight_proto::cln::{self as pb, pay_response::PayStatus};

use super::{ApiError, ClnService};
use crate::payments::{Payment, Status};

/// How long a payment is retried, and how long the call waits for its outcome.
const RETRY_FOR: Duration = Duration::from_secs(60);

/// Answers the call (the caller's device and signature were checked before it).
pub async fn pay(api: &ClnService, req: pb::PayRequest) -> Result<pb::PayResponse, ApiError> {
    let invalid = |m: String| ApiError::Invalid(m);
    let invoice = Bolt11Invoice::from_str(req.bolt11.trim())
        .map_err(|e| invalid(format!("bolt11 is not a BOLT11 invoice: {e}")))?;
    if invoice.network() != api.network {
        return Err(invalid(format!(
            "the invoice is for {:?}, this node is on {}",
            invoice.network(),
            api.network
        )));
    }
    if invoice.is_expired() {
        return Err(invalid("the invoice has expired".into()));
    }
    let amount_msat = match (invoice.amount_milli_satoshis(), &req.amount_msat) {
        (Some(a), None) => a,
        (Some(_), Some(_)) => {
            return Err(invalid(
                "the invoice names its amount: give no amount_msat".into(),
            ));
        }
        (None, Some(a)) if a.msat > 0 => a.msat,
        (None, _) => {
            return Err(invalid(
                "the invoice names no amount: give amount_msat".into(),
            ));
        }
    };
    let hash = invoice.payment_hash().to_byte_array();
    if let Some(p) = api
        .node
        .payments
        .get(&hash)
        .map_err(|e| ApiError::Internal(e.to_string()))?
        && p.status != Status::Failed
    {
        return Err(ApiError::Precondition(format!(
            "this invoice was paid already ({:?})",
            p.status
        )));
    }
    let running = api.node_with_signer("payment").await?;

    // The signer's word first.
    let (keys, bolt11) = (running.ldk.keys.clone(), req.bolt11.trim().to_string());
    match api.on_ldk(move || keys.preapprove_invoice(&bolt11)).await? {
        Ok(true) => {}
        Ok(false) => {
            return Err(ApiError::Refused {
                what: "payment".into(),
                reason: "the signer did not approve this invoice".into(),
            });
        }
        Err(reason) => {
            return Err(ApiError::Refused {
                what: "payment".into(),
                reason,
            });
        }
    }

    let now = crate::now_secs();
    let destination = invoice.recover_payee_pub_key();
    api.node
        .payments
        .insert(
            hash,
            Payment {
                bolt11: req.bolt11.trim().to_string(),
                payment_hash: hex::encode(hash),
                destination: destination.to_string(),
                amount_msat,
                amount_sent_msat: None,
                created_at: now,
                completed_at: None,
                preimage: None,
                created_index: 0,
                status: Status::Pending,
                failure: None,
            },
        )
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let outcome = api.node.payments.wait(hash);
    let cm = running.ldk.channel_manager.clone();
    let explicit = req.amount_msat.as_ref().map(|a| a.msat);
    let sent = api
        .on_ldk(move || {
            cm.pay_for_bolt11_invoice(
                &invoice,
                PaymentId(hash),
                explicit,
                RouteParametersConfig::default(),
                Retry::Timeout(RETRY_FOR),
            )
        })
        .await?;
    if let Err(e) = sent {
        let why = format!("cannot send the payment: {e:?}");
        let _ = api.node.payments.settle(hash, |p| {
            p.status = Status::Failed;
            p.failure = Some(why.clone());
        });
        return Err(ApiError::Precondition(why));
    }
    let paid = match tokio::time::timeout(RETRY_FOR + Duration::from_secs(30), outcome).await {
        Ok(Ok(Ok(p))) => p,
        Ok(Ok(Err(why))) => return Err(ApiError::Precondition(why)),
        Ok(Err(_)) | Err(_) => {
            return Err(ApiError::Unreachable(
                "the payment has no outcome yet; see ListPays".into(),
            ));
        }
    };
    Ok(pb::PayResponse {
        payment_preimage: paid
            .preimage
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .unwrap_or_default(),
        destination: Some(destination.serialize().to_vec()),
        payment_hash: hash.to_vec(),
        created_at: paid.created_at as f64,
        parts: 1,
        amount_msat: Some(pb::Amount { msat: amount_msat }),
        amount_sent_msat: Some(pb::Amount {
            msat: paid.amount_sent_msat.unwrap_or(amount_msat),
        }),
        warning_partial_completion: None,
        status: PayStatus::Complete as i32,
    })
}
