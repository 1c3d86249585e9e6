//! `ListFunds`: the wallet's outputs and the node's channels.

use bdk_wallet::chain::ChainPosition;
use lightning_signer::bitcoin::Address;
use skylight_proto::cln::{self as pb, listfunds_outputs::ListfundsOutputsStatus};

use super::{ApiError, ClnService, channel_state, our_balance_msat, txid_bytes};
use crate::node::Running;

/// Answers the call (the caller's device and signature were checked before it).
pub async fn listfunds(
    api: &ClnService,
    req: pb::ListfundsRequest,
) -> Result<pb::ListfundsResponse, ApiError> {
    let running = api.running("the funds").await?;
    api.on_ldk(move || list(&running, req.spent.unwrap_or(false)))
        .await
}

fn list(running: &Running, spent: bool) -> pb::ListfundsResponse {
    let outs = running.wallet.outputs(spent);
    let network = running.wallet.network();
    let outputs = outs
        .into_iter()
        .map(|o| {
            let (status, blockheight) = match (&o.chain_position, o.is_spent) {
                (_, true) => (ListfundsOutputsStatus::Spent, None),
                (ChainPosition::Confirmed { anchor, .. }, false) => (
                    ListfundsOutputsStatus::Confirmed,
                    Some(anchor.block_id.height),
                ),
                (ChainPosition::Unconfirmed { .. }, false) => {
                    (ListfundsOutputsStatus::Unconfirmed, None)
                }
            };
            pb::ListfundsOutputs {
                txid: txid_bytes(&o.outpoint.txid),
                output: o.outpoint.vout,
                amount_msat: Some(pb::Amount {
                    msat: o.txout.value.to_sat() * 1000,
                }),
                scriptpubkey: o.txout.script_pubkey.to_bytes(),
                address: Address::from_script(&o.txout.script_pubkey, network)
                    .ok()
                    .map(|a| a.to_string()),
                redeemscript: None,
                status: status as i32,
                blockheight,
                reserved: false,
                reserved_to_block: None,
            }
        })
        .collect();
    let connected = crate::node::peers::connected(&running.peer_manager);
    let channels = running
        .ldk
        .channel_manager
        .list_channels()
        .into_iter()
        .map(|c| pb::ListfundsChannels {
            peer_id: c.counterparty.node_id.serialize().to_vec(),
            our_amount_msat: Some(pb::Amount {
                msat: our_balance_msat(running, &c),
            }),
            amount_msat: Some(pb::Amount {
                msat: c.channel_value_satoshis * 1000,
            }),
            funding_txid: c
                .funding_txo
                .map(|o| txid_bytes(&o.txid))
                .unwrap_or_default(),
            funding_output: c.funding_txo.map(|o| o.index as u32).unwrap_or(0),
            connected: connected.contains(&c.counterparty.node_id),
            state: channel_state(&c) as i32,
            short_channel_id: c.short_channel_id.map(scid),
            channel_id: c.channel_id.0.to_vec(),
        })
        .collect();
    pb::ListfundsResponse { outputs, channels }
}

/// A short channel id as CLN writes it: `block x tx x output`.
pub fn scid(id: u64) -> String {
    format!("{}x{}x{}", id >> 40, (id >> 16) & 0xff_ffff, id & 0xffff)
}
