//! `Invoice`: a BOLT11 invoice made by the node and signed by the tenant's signer.

use lightning_signer::bitcoin::hashes::{Hash, sha256};
use lightning_signer::lightning::ln::channelmanager::Bolt11InvoiceParameters;
use lightning_signer::lightning::types::payment::PaymentHash;
use lightning_signer::lightning_invoice::{Bolt11InvoiceDescription, Description};
use skylight_proto::cln::{self as pb, amount_or_any};

use super::Ctx;
use crate::node::NodeError;

/// CLN's default expiry: a week.
const DEFAULT_EXPIRY_SECS: u64 = 7 * 24 * 3600;

/// Answers `Invoice`.
pub async fn handle(
    ctx: &Ctx<'_>,
    req: pb::InvoiceRequest,
) -> Result<pb::InvoiceResponse, NodeError> {
    let params = parameters(&req)?;
    let preimage = req.preimage.as_deref().map(|p| {
        p.try_into()
            .expect("parameters() checked the preimage's length")
    });
    let (kept, bolt11) = ctx
        .node
        .create_invoice(params, req.label, req.description, preimage)
        .await?;
    Ok(pb::InvoiceResponse {
        bolt11: kept.bolt11,
        payment_hash: bolt11.payment_hash().to_byte_array().to_vec(),
        payment_secret: bolt11.payment_secret().0.to_vec(),
        expires_at: kept.expires_at,
        created_index: kept.created_index,
        ..Default::default()
    })
}

/// Checks the request and turns it into LDK's parameters.
fn parameters(req: &pb::InvoiceRequest) -> Result<Bolt11InvoiceParameters, NodeError> {
    let invalid = |m: &str| Err(NodeError::Invalid(m.to_string()));
    if req.label.is_empty() {
        return invalid("label is required: it names the invoice");
    }
    if !req.fallbacks.is_empty() {
        return invalid("fallback addresses are not supported by this node");
    }
    if !req.exposeprivatechannels.is_empty() {
        return invalid(
            "exposeprivatechannels is not supported: this node adds route hints for its private channels itself",
        );
    }
    let amount_msats = match req.amount_msat.as_ref().and_then(|a| a.value.as_ref()) {
        Some(amount_or_any::Value::Amount(a)) if a.msat > 0 => Some(a.msat),
        Some(amount_or_any::Value::Amount(_)) => {
            return invalid("amount_msat must be more than 0 (or \"any\")");
        }
        Some(amount_or_any::Value::Any(true)) => None,
        _ => return invalid("amount_msat is required: an amount, or \"any\""),
    };
    let description = if req.deschashonly.unwrap_or(false) {
        Bolt11InvoiceDescription::Hash(lightning_signer::lightning_invoice::Sha256(
            sha256::Hash::hash(req.description.as_bytes()),
        ))
    } else {
        match Description::new(req.description.clone()) {
            Ok(d) => Bolt11InvoiceDescription::Direct(d),
            Err(_) => {
                return invalid(
                    "the description is too long for an invoice (639 bytes at most); use deschashonly",
                );
            }
        }
    };
    let payment_hash = match &req.preimage {
        None => None,
        Some(p) if p.len() == 32 => Some(PaymentHash(sha256::Hash::hash(p).to_byte_array())),
        Some(_) => return invalid("preimage must be 32 bytes"),
    };
    let expiry = req.expiry.unwrap_or(DEFAULT_EXPIRY_SECS);
    let expiry =
        u32::try_from(expiry).map_err(|_| NodeError::Invalid("expiry is too far off".into()))?;
    let cltv = match req.cltv {
        None => None,
        Some(c) => Some(
            u16::try_from(c).map_err(|_| NodeError::Invalid("cltv must be below 65536".into()))?,
        ),
    };
    Ok(Bolt11InvoiceParameters {
        amount_msats,
        description,
        invoice_expiry_delta_secs: Some(expiry),
        min_final_cltv_expiry_delta: cltv,
        payment_hash,
    })
}
