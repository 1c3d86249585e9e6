//! Who the node is and how it stands.

use std::net::SocketAddr;

use lightning_signer::bitcoin::Network;
use lightning_signer::bitcoin::secp256k1::PublicKey;

use super::chain_health::ChainStatus;
use super::{Node, NodeError, Running};

/// The node, running or not.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// The tenant's node id.
    pub id: PublicKey,
    /// The network.
    pub network: Network,
    /// The chain's height as last seen, if the chain could be reached.
    pub chain_height: Option<u32>,
    /// How the chain source stands now.
    pub chain: ChainStatus,
    /// What the running node reports; `None` before it starts (its signer never attached).
    pub running: Option<RunningInfo>,
}

/// What the running node reports.
#[derive(Debug, Clone)]
pub struct RunningInfo {
    /// The block the node is at.
    pub height: u32,
    /// Connected peers.
    pub peers: u32,
    /// Channels by state.
    pub channels: ChannelCounts,
    /// The features the node offers.
    pub features: Features,
    /// Where Lightning peers connect.
    pub p2p_addr: SocketAddr,
    /// The host peers are told to reach the node at (with `p2p_addr`'s port), if any.
    pub p2p_announce: Option<String>,
}

/// Channels by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelCounts {
    /// Not yet ready (funding unconfirmed).
    pub pending: u32,
    /// Ready and usable.
    pub active: u32,
    /// Ready but not usable (the peer is away, say).
    pub inactive: u32,
}

/// Feature bits, most significant byte first (BOLT 9's order on the wire).
#[derive(Debug, Clone, Default)]
pub struct Features {
    /// Sent in `init`.
    pub init: Vec<u8>,
    /// Announced for the node.
    pub node: Vec<u8>,
    /// Announced for channels.
    pub channel: Vec<u8>,
}

/// Feature flags as the wire carries them; LDK keeps them least significant byte first.
pub(super) fn bolt9(le: &[u8]) -> Vec<u8> {
    le.iter().rev().copied().collect()
}

impl Node {
    /// Who the node is, and, once it runs, its height, peers, channels and features.
    pub async fn info(&self) -> Result<NodeInfo, NodeError> {
        let chain_height = *self.height.borrow();
        let running = match self.current() {
            Some(r) => Some(self.on_ldk(move || running_info(&r)).await?),
            None => None,
        };
        Ok(NodeInfo {
            id: self.id,
            network: self.network,
            chain_height,
            chain: self.chain_status(),
            running,
        })
    }
}

fn running_info(running: &Running) -> RunningInfo {
    let cm = &running.ldk.channel_manager;
    let mut channels = ChannelCounts::default();
    for c in cm.list_channels() {
        if !c.is_channel_ready {
            channels.pending += 1;
        } else if c.is_usable {
            channels.active += 1;
        } else {
            channels.inactive += 1;
        }
    }
    RunningInfo {
        height: cm.current_best_block().height,
        peers: running.peer_manager.list_peers().len() as u32,
        channels,
        features: Features {
            init: bolt9(cm.init_features().le_flags()),
            node: bolt9(cm.node_features().le_flags()),
            channel: bolt9(cm.channel_features().le_flags()),
        },
        p2p_addr: running.p2p_addr,
        p2p_announce: running.p2p_announce.clone(),
    }
}
