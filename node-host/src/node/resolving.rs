//! Channels closed on chain whose outputs are still being claimed: LDK no longer lists
//! them (its channel manager forgets a channel when it closes), but their monitors still
//! watch and claim what is ours — our delayed output until `to_self_delay` has passed,
//! HTLCs until they resolve. CLN lists such channels as `ONCHAIN`; so do we, with what is
//! still to come to us, so that a user never sees funds vanish between a close and the
//! sweep that brings them to the wallet.

use std::sync::Arc;

use lightning_signer::bitcoin::OutPoint;
use lightning_signer::bitcoin::secp256k1::PublicKey;
use lightning_signer::lightning::ln::types::ChannelId;

use super::{Node, NodeError, Running, peers};

/// A channel closed on chain, its outputs not all resolved.
#[derive(Debug, Clone)]
pub struct Resolving {
    /// The channel.
    pub channel_id: ChannelId,
    /// The peer.
    pub peer: PublicKey,
    /// Whether the peer is connected now.
    pub peer_connected: bool,
    /// The funding output the closing transaction spent.
    pub funding: OutPoint,
    /// What is still to come to us on chain (msat, whole sats), as the monitor reckons it;
    /// a payment of ours still in flight on chain is not counted.
    pub our_balance_msat: u64,
}

impl Node {
    /// The channels closed on chain that still have outputs to resolve.
    pub async fn resolving_channels(&self) -> Result<Vec<Resolving>, NodeError> {
        let running = self.started("its channels").await?;
        self.on_ldk(move || {
            let open: Vec<ChannelId> = running
                .ldk
                .channel_manager
                .list_channels()
                .iter()
                .map(|c| c.channel_id)
                .collect();
            resolving_list(&running, &open)
        })
        .await
    }
}

/// The monitors of channels not `open` that still claim something (call on LDK's
/// runtime).
pub(super) fn resolving_list(running: &Arc<Running>, open: &[ChannelId]) -> Vec<Resolving> {
    let monitors = &running.ldk.chain_monitor;
    let connected = peers::connected(&running.peer_manager);
    monitors
        .list_monitors()
        .into_iter()
        .filter(|id| !open.contains(id))
        .filter_map(|id| {
            let m = monitors.get_monitor(id).ok()?;
            let balances = m.get_claimable_balances();
            if balances.is_empty() {
                return None;
            }
            let peer = m.get_counterparty_node_id();
            Some(Resolving {
                channel_id: id,
                peer,
                peer_connected: connected.contains(&peer),
                funding: m.get_funding_txo().into_bitcoin_outpoint(),
                our_balance_msat: balances
                    .iter()
                    .map(|b| b.claimable_amount_satoshis())
                    .sum::<u64>()
                    * 1000,
            })
        })
        .collect()
}
