//! `ListPeerChannels`: the node's channels with their peers, and those closed on chain whose
//! outputs are still being claimed (`ONCHAIN`, as CLN).

use lightning_signer::lightning::ln::channel_state::{
    ChannelDetails, InboundHTLCStateDetails as In, OutboundHTLCStateDetails as Out,
};
use skylight_proto::cln::listpeerchannels_channels_htlcs::ListpeerchannelsChannelsHtlcsDirection as Direction;
use skylight_proto::cln::{self as pb, ChannelSide, HtlcState};

use super::Ctx;
use super::convert::{channel_state, msat, txid_bytes};
use crate::node::{Channel, NodeError, scid};

/// Answers `ListPeerChannels`.
pub async fn handle(
    ctx: &Ctx<'_>,
    req: pb::ListpeerchannelsRequest,
) -> Result<pb::ListpeerchannelsResponse, NodeError> {
    let wanted = |c: &Channel| {
        let d = &c.details;
        req.id
            .as_ref()
            .is_none_or(|id| *id == d.counterparty.node_id.serialize().to_vec())
            && req
                .short_channel_id
                .as_ref()
                .is_none_or(|s| d.short_channel_id.map(scid).as_ref() == Some(s))
            && req
                .channel_id
                .as_ref()
                .is_none_or(|id| *id == d.channel_id.0.to_vec())
    };
    let mut channels = ctx
        .node
        .channels()
        .await?
        .into_iter()
        .filter(wanted)
        .map(|c| {
            let d = &c.details;
            pb::ListpeerchannelsChannels {
                peer_id: d.counterparty.node_id.serialize().to_vec(),
                peer_connected: c.peer_connected,
                state: channel_state(d) as i32,
                short_channel_id: d.short_channel_id.map(scid),
                channel_id: Some(d.channel_id.0.to_vec()),
                funding_txid: d.funding_txo.map(|o| txid_bytes(&o.txid)),
                funding_outnum: d.funding_txo.map(|o| o.index as u32),
                private: Some(!d.is_announced),
                opener: if d.is_outbound {
                    ChannelSide::Local
                } else {
                    ChannelSide::Remote
                } as i32,
                to_us_msat: msat(c.our_balance_msat),
                total_msat: msat(d.channel_value_satoshis * 1000),
                spendable_msat: msat(d.next_outbound_htlc_limit_msat),
                receivable_msat: msat(d.inbound_capacity_msat),
                status: vec![format!(
                    "confirmations: {}/{}",
                    d.confirmations.unwrap_or(0),
                    d.confirmations_required.unwrap_or(0)
                )],
                htlcs: htlcs(d),
            }
        })
        .collect::<Vec<_>>();
    // Closed on chain, outputs still being claimed (CLN's `ONCHAIN`). The monitor knows no
    // short channel id: asked for one, none of these is it.
    let resolving = ctx
        .node
        .resolving_channels()
        .await?
        .into_iter()
        .filter(|r| {
            req.short_channel_id.is_none()
                && req
                    .id
                    .as_ref()
                    .is_none_or(|id| *id == r.peer.serialize().to_vec())
                && req
                    .channel_id
                    .as_ref()
                    .is_none_or(|id| *id == r.channel_id.0.to_vec())
        })
        .map(|r| pb::ListpeerchannelsChannels {
            peer_id: r.peer.serialize().to_vec(),
            peer_connected: r.peer_connected,
            state: pb::ChannelState::Onchain as i32,
            channel_id: Some(r.channel_id.0.to_vec()),
            funding_txid: Some(txid_bytes(&r.funding.txid)),
            funding_outnum: Some(r.funding.vout),
            to_us_msat: msat(r.our_balance_msat),
            status: vec!["closed on chain: our outputs are being claimed".into()],
            ..Default::default()
        });
    channels.extend(resolving);
    Ok(pb::ListpeerchannelsResponse { channels })
}

/// The channel's HTLCs in flight, with LDK's states put in CLN's terms (the step each side
/// is at in the commitment dance); `status` keeps LDK's own name for the state.
fn htlcs(c: &ChannelDetails) -> Vec<pb::ListpeerchannelsChannelsHtlcs> {
    let inbound = c.pending_inbound_htlcs.iter().map(|h| {
        let state = match h.state {
            Some(In::AwaitingRemoteRevokeToAdd) => HtlcState::SentAddAckCommit,
            Some(In::Committed) | None => HtlcState::RcvdAddAckRevocation,
            Some(In::AwaitingRemoteRevokeToRemoveFulfill)
            | Some(In::AwaitingRemoteRevokeToRemoveFail) => HtlcState::SentRemoveCommit,
        };
        pb::ListpeerchannelsChannelsHtlcs {
            direction: Direction::In as i32,
            id: h.htlc_id,
            amount_msat: Some(pb::Amount {
                msat: h.amount_msat,
            }),
            expiry: h.cltv_expiry,
            payment_hash: h.payment_hash.0.to_vec(),
            local_trimmed: Some(h.is_dust),
            status: h.state.as_ref().map(|s| format!("{s:?}")),
            state: state as i32,
        }
    });
    let outbound = c.pending_outbound_htlcs.iter().map(|h| {
        let state = match h.state {
            Some(Out::AwaitingRemoteRevokeToAdd) | None => HtlcState::SentAddCommit,
            Some(Out::Committed) => HtlcState::SentAddAckRevocation,
            Some(Out::AwaitingRemoteRevokeToRemoveSuccess)
            | Some(Out::AwaitingRemoteRevokeToRemoveFailure) => HtlcState::SentRemoveAckCommit,
        };
        pb::ListpeerchannelsChannelsHtlcs {
            direction: Direction::Out as i32,
            // An HTLC still in the holding cell has no id yet.
            id: h.htlc_id.unwrap_or(u64::MAX),
            amount_msat: Some(pb::Amount {
                msat: h.amount_msat,
            }),
            expiry: h.cltv_expiry,
            payment_hash: h.payment_hash.0.to_vec(),
            local_trimmed: Some(h.is_dust),
            status: Some(match &h.state {
                Some(s) => format!("{s:?}"),
                None => "HoldingCell".to_string(),
            }),
            state: state as i32,
        }
    });
    inbound.chain(outbound).collect()
}
