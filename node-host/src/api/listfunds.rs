//! `ListFunds`: the wallet's outputs and the node's channels, closed ones whose outputs are
//! still being claimed on chain included (`ONCHAIN`, as CLN).

use skylight_proto::cln::{self as pb, listfunds_outputs::ListfundsOutputsStatus};

use super::Ctx;
use super::convert::{channel_state, msat, txid_bytes};
use crate::node::{NodeError, scid};

/// Answers `ListFunds`.
pub async fn handle(
    ctx: &Ctx<'_>,
    req: pb::ListfundsRequest,
) -> Result<pb::ListfundsResponse, NodeError> {
    let funds = ctx.node.funds(req.spent.unwrap_or(false)).await?;
    let outputs = funds
        .outputs
        .into_iter()
        .map(|o| {
            let (status, blockheight) = match (o.spent, o.confirmed_at) {
                (true, _) => (ListfundsOutputsStatus::Spent, None),
                (false, Some(height)) => (ListfundsOutputsStatus::Confirmed, Some(height)),
                (false, None) => (ListfundsOutputsStatus::Unconfirmed, None),
            };
            pb::ListfundsOutputs {
                txid: txid_bytes(&o.outpoint.txid),
                output: o.outpoint.vout,
                amount_msat: msat(o.value.to_sat() * 1000),
                scriptpubkey: o.script_pubkey.to_bytes(),
                address: o.address.map(|a| a.to_string()),
                redeemscript: None,
                status: status as i32,
                blockheight,
                reserved: false,
                reserved_to_block: None,
            }
        })
        .collect();
    let channels = funds
        .channels
        .into_iter()
        .map(|c| {
            let d = &c.details;
            pb::ListfundsChannels {
                peer_id: d.counterparty.node_id.serialize().to_vec(),
                our_amount_msat: msat(c.our_balance_msat),
                amount_msat: msat(d.channel_value_satoshis * 1000),
                funding_txid: d
                    .funding_txo
                    .map(|o| txid_bytes(&o.txid))
                    .unwrap_or_default(),
                funding_output: d.funding_txo.map(|o| o.index as u32).unwrap_or(0),
                connected: c.peer_connected,
                state: channel_state(d) as i32,
                short_channel_id: d.short_channel_id.map(scid),
                channel_id: d.channel_id.0.to_vec(),
            }
        })
        .chain(funds.resolving.into_iter().map(|r| pb::ListfundsChannels {
            peer_id: r.peer.serialize().to_vec(),
            our_amount_msat: msat(r.our_balance_msat),
            // The monitor does not keep the channel's size: what is still ours stands for it.
            amount_msat: msat(r.our_balance_msat),
            funding_txid: txid_bytes(&r.funding.txid),
            funding_output: r.funding.vout,
            connected: r.peer_connected,
            state: pb::ChannelState::Onchain as i32,
            short_channel_id: None,
            channel_id: r.channel_id.0.to_vec(),
        }))
        .collect();
    Ok(pb::ListfundsResponse { outputs, channels })
}
