//! `FundChannel`: open a channel to a connected peer, funded from the wallet, with every
//! signature (commitments, then the funding inputs) made by the tenant's signer.

use std::time::Duration;

use lightning_signer::bitcoin::consensus::encode::serialize;
use lightning_signer::bitcoin::secp256k1::PublicKey;
use skylight_proto::cln::{self as pb, amount_or_all};

use super::{ApiError, ClnService, sat_per_kw, txid_bytes};
use crate::ldk;

/// How long the opening may take: the peer's answers and three signer round trips.
const OPENING: Duration = Duration::from_secs(120);

/// Answers the call (the caller's device and signature were checked before it).
pub async fn fundchannel(
    api: &ClnService,
    req: pb::FundchannelRequest,
) -> Result<pb::FundchannelResponse, ApiError> {
    let invalid = |m: &str| ApiError::Invalid(m.to_string());
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
    let running = api.node_with_signer("channel opening").await?;
    let sat_per_kw = sat_per_kw(req.feerate.as_ref(), &running.fees);
    let pm = running.peer_manager.clone();
    if api
        .on_ldk(move || pm.peer_by_node_id(&peer))
        .await?
        .is_none()
    {
        return Err(ApiError::Precondition(format!(
            "not connected to {peer}: connect to the peer first"
        )));
    }
    let user_channel_id = u128::from_be_bytes({
        let mut b = [0u8; 16];
        getrandom::getrandom(&mut b).map_err(|e| ApiError::Internal(e.to_string()))?;
        b
    });
    let outcome = api.node.fundings.start(user_channel_id, sat_per_kw);
    let mut config = ldk::user_config();
    config.channel_handshake_config.announce_for_forwarding = req.announce.unwrap_or(false);
    let cm = running.ldk.channel_manager.clone();
    let created = api
        .on_ldk(move || cm.create_channel(peer, sats, 0, user_channel_id, None, Some(config)))
        .await?;
    if let Err(e) = created {
        api.node.fundings.abandon(user_channel_id);
        return Err(ApiError::Precondition(format!(
            "cannot open the channel: {e:?}"
        )));
    }
    let funded = match tokio::time::timeout(OPENING, outcome).await {
        Ok(Ok(Ok(f))) => f,
        Ok(Ok(Err(why))) => return Err(ApiError::Precondition(why)),
        Ok(Err(_)) => return Err(ApiError::Internal("the opening was dropped".into())),
        Err(_) => {
            return Err(ApiError::Unreachable(format!(
                "the opening did not complete within {} s (the peer or the signer did not answer); see ListPeerChannels",
                OPENING.as_secs()
            )));
        }
    };
    Ok(pb::FundchannelResponse {
        tx: serialize(&funded.tx),
        txid: txid_bytes(&funded.tx.compute_txid()),
        outnum: funded.outnum,
        channel_id: funded.channel_id.0.to_vec(),
        close_to: None,
        mindepth: None,
    })
}
