//! `Close`: a cooperative close, whose transaction both signers sign. Force closes are not
//! built (their sweeps cannot be signed yet), and are refused rather than half-done.

use std::time::Duration;

use lightning_signer::bitcoin::consensus::encode::serialize;
use lightning_signer::bitcoin::secp256k1::PublicKey;
use lightning_signer::lightning::ln::channel_state::ChannelDetails;
use skylight_proto::cln::{self as pb, close_response::CloseType};

use super::listfunds::scid;
use super::{ApiError, ClnService, txid_bytes};

/// How long the closing negotiation may take.
const CLOSING: Duration = Duration::from_secs(60);

/// Answers the call (the caller's device and signature were checked before it).
pub async fn close(api: &ClnService, req: pb::CloseRequest) -> Result<pb::CloseResponse, ApiError> {
    let invalid = |m: &str| ApiError::Invalid(m.to_string());
    if req.unilateraltimeout.is_some_and(|t| t > 0) {
        return Err(ApiError::Precondition(
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
    let running = api.node_with_signer("closing transaction").await?;
    let cm = running.ldk.channel_manager.clone();
    let channels = api.on_ldk(move || cm.list_channels()).await?;
    let channel = pick(&channels, req.id.trim())?.clone();
    let pm = running.peer_manager.clone();
    let peer = channel.counterparty.node_id;
    if api
        .on_ldk(move || pm.peer_by_node_id(&peer))
        .await?
        .is_none()
    {
        return Err(ApiError::Precondition(format!(
            "{peer} is not connected: a cooperative close needs the peer (force close is not built)"
        )));
    }
    let closed = api.node.closings.wait(channel.channel_id);
    let cm = running.ldk.channel_manager.clone();
    let id = channel.channel_id;
    api.on_ldk(move || cm.close_channel(&id, &peer))
        .await?
        .map_err(|e| ApiError::Precondition(format!("cannot close the channel: {e:?}")))?;
    let reason = tokio::time::timeout(CLOSING, closed)
        .await
        .map_err(|_| {
            ApiError::Unreachable(format!(
                "the close did not complete within {} s; see ListPeerChannels",
                CLOSING.as_secs()
            ))
        })?
        .map_err(|_| ApiError::Internal("the close was dropped".into()))?;
    tracing::info!(channel = %id, %reason, "channel closed by request");
    let tx = channel
        .funding_txo
        .and_then(|o| running.broadcaster.spending(o.into_bitcoin_outpoint()));
    Ok(pb::CloseResponse {
        item_type: if channel.funding_txo.is_some() {
            CloseType::Mutual
        } else {
            CloseType::Unopened
        } as i32,
        txs: tx.iter().map(serialize).collect(),
        txids: tx.iter().map(|t| txid_bytes(&t.compute_txid())).collect(),
    })
}

/// The channel `id` names: a peer's node id (its only channel), a channel id, or a short
/// channel id.
fn pick<'a>(channels: &'a [ChannelDetails], id: &str) -> Result<&'a ChannelDetails, ApiError> {
    if let Ok(peer) = id.parse::<PublicKey>() {
        let theirs: Vec<_> = channels
            .iter()
            .filter(|c| c.counterparty.node_id == peer)
            .collect();
        return match theirs.as_slice() {
            [one] => Ok(one),
            [] => Err(ApiError::NotFound(format!("no channel with {peer}"))),
            _ => Err(ApiError::Invalid(format!(
                "several channels with {peer}: name one by its channel id"
            ))),
        };
    }
    channels
        .iter()
        .find(|c| {
            hex::encode(c.channel_id.0) == id || c.short_channel_id.map(scid).as_deref() == Some(id)
        })
        .ok_or_else(|| ApiError::NotFound(format!("no channel {id}")))
}
