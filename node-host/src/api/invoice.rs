//! `Invoice`: a BOLT11 invoice made by LDK and signed by the tenant's signer.

use lightning_signer::bitcoin::hashes::{Hash, sha256};
use lightning_signer::lightning::ln::channelmanager::Bolt11InvoiceParameters;
use lightning_signer::lightning::types::payment::PaymentHash;
use lightning_signer::lightning_invoice::{
    Bolt11InvoiceDescription, Description, SignOrCreationError,
};
use skylight_proto::cln::{self as pb, amount_or_any};

use super::{ApiError, ClnService};
use crate::invoices::Invoice;

/// CLN's default expiry: a week.
const DEFAULT_EXPIRY_SECS: u64 = 7 * 24 * 3600;

/// Answers the call (the caller's device and signature were checked before it).
pub async fn invoice(
    api: &ClnService,
    req: pb::InvoiceRequest,
) -> Result<pb::InvoiceResponse, ApiError> {
    let params = parameters(&req)?;
    let label = req.label.clone();
    let known = |e: crate::invoices::InvoiceError| match e {
        crate::invoices::InvoiceError::DuplicateLabel(l) => ApiError::DuplicateLabel(l),
        e => ApiError::Internal(e.to_string()),
    };
    if api.node.invoices.get(&label).map_err(known)?.is_some() {
        return Err(ApiError::DuplicateLabel(label));
    }
    let running = api.node_with_signer("invoice").await?;
    let made = {
        let running = running.clone();
        api.on_ldk(move || running.ldk.channel_manager.create_bolt11_invoice(params))
            .await?
    };
    let bolt11 = match made {
        Ok(i) => i,
        Err(SignOrCreationError::SignError(())) => {
            return Err(match running.ldk.keys.take_refusal() {
                Some(reason) => ApiError::Refused {
                    what: "invoice".into(),
                    reason,
                },
                None => ApiError::SignerTimeout("invoice".into()),
            });
        }
        Err(SignOrCreationError::CreationError(e)) => {
            return Err(ApiError::Invalid(format!("cannot make this invoice: {e}")));
        }
    };
    let expires_at = bolt11.duration_since_epoch().as_secs() + bolt11.expiry_time().as_secs();
    let hash = bolt11.payment_hash().to_byte_array();
    let stored = api
        .node
        .invoices
        .insert(
            Invoice {
                label,
                bolt11: bolt11.to_string(),
                payment_hash: hex::encode(hash),
                amount_msat: bolt11.amount_milli_satoshis(),
                description: req.description.clone(),
                expires_at,
                created_index: 0,
                preimage: req.preimage.as_ref().map(hex::encode),
                paid: None,
            },
            hash,
        )
        .map_err(known)?;
    Ok(pb::InvoiceResponse {
        bolt11: stored.bolt11,
        payment_hash: hash.to_vec(),
        payment_secret: bolt11.payment_secret().0.to_vec(),
        expires_at,
        created_index: stored.created_index,
        ..Default::default()
    })
}

/// Checks the request and turns it into LDK's parameters.
fn parameters(req: &pb::InvoiceRequest) -> Result<Bolt11InvoiceParameters, ApiError> {
    let invalid = |m: &str| Err(ApiError::Invalid(m.to_string()));
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
        u32::try_from(expiry).map_err(|_| ApiError::Invalid("expiry is too far off".into()))?;
    let cltv = match req.cltv {
        None => None,
        Some(c) => Some(
            u16::try_from(c).map_err(|_| ApiError::Invalid("cltv must be below 65536".into()))?,
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
