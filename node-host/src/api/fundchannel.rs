//! `FundChannel`: open a channel to a connected peer, funded from the wallet, with every
//! signature (commitments, then the funding inputs) made by the tenant's signer.

use lightning_signer::bitcoin::consensus::encode::serialize;
use lightning_signer::bitcoin::secp256k1::PublicKey;
use skylight_proto::cln::{self as pb, amount_or_all};

use super::Ctx;
use super::convert::{fee_rate, txid_bytes};
use crate::node::NodeError;

/// Answers `FundChannel`.
pub async fn handle(
    ctx: &Ctx<'_>,
    req: pb::FundchannelRequest,
) -> Result<pb::FundchannelResponse, NodeError> {
    let invalid = |m: &str| NodeError::Invalid(m.to_string());
    let peer =
        PublicKey::from_slice(&req.id).map_err(|_| invalid("id must be a 33-byte node id"))?;
    let sats = match req.amount.as_ref().and_then(|a| a.value.as_ref()) {
        Some(amount_or_all::Value::Amount(a)) if a.msat % 1000 == 0 && a.msat > 0 => a.msat / 1000,
        Some(amount_or_all::Value::Amount(_)) => {
            return Err(invalid(
                "amount must be a whole number of satoshis, above 0",
            ));
        }
        Some(amount_or_all::Value::All(_)) => {
            return Err(invalid(
                "amount \"all\" is not supported yet: give an amount",
            ));
        }
        None => return Err(invalid("amount is required")),
    };
    if req.push_msat.as_ref().is_some_and(|p| p.msat > 0) {
        return Err(invalid(
            "push_msat is not possible: the signer's policy refuses to give funds away at opening",
        ));
    }
    if req.close_to.is_some()
        || req.request_amt.is_some()
        || req.compact_lease.is_some()
        || !req.utxos.is_empty()
        || req.reserve.is_some()
        || !req.channel_type.is_empty()
    {
        return Err(invalid(
            "close_to, request_amt, compact_lease, utxos, reserve and channel_type are not supported",
        ));
    }
    let funded = ctx
        .node
        .fund_channel(
            peer,
            sats,
            req.announce.unwrap_or(false),
            fee_rate(req.feerate.as_ref()),
        )
        .await?;
    Ok(pb::FundchannelResponse {
        tx: serialize(&funded.tx),
        txid: txid_bytes(&funded.tx.compute_txid()),
        outnum: funded.outnum,
        channel_id: funded.channel_id.0.to_vec(),
        close_to: None,
        mindepth: None,
    })
}
