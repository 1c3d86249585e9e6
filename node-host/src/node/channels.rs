//! Peers and channels: connecting, listing, opening (funded from the wallet). Closing is
//! `close`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lightning_signer::bitcoin::secp256k1::PublicKey;
use lightning_signer::lightning::ln::channel_state::ChannelDetails;
use lightning_signer::lightning::ln::peer_handler::PeerDetails;

use super::funding::Funded;
use super::info::bolt9;
use super::{FeeRate, Node, NodeError, Running, ldk, peers};

/// How long a connection may take to complete its handshake.
const HANDSHAKE: Duration = Duration::from_secs(20);
/// How long an opening may take: the peer's answers and three signer round trips.
const OPENING: Duration = Duration::from_secs(120);

/// A channel, with what LDK's details leave out.
#[derive(Debug, Clone)]
pub struct Channel {
    /// LDK's details.
    pub details: ChannelDetails,
    /// What is ours: what we would get on chain if it closed now (msat, whole sats), from
    /// its monitor; 0 before the channel has one.
    pub our_balance_msat: u64,
    /// Whether the peer is connected now.
    pub peer_connected: bool,
}

/// A peer: connected now, or one we have channels with.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Its node id.
    pub id: PublicKey,
    /// Whether it is connected now.
    pub connected: bool,
    /// Where we would reconnect: the address kept for it, else where it is now.
    pub netaddr: Option<String>,
    /// Where it is connected from.
    pub remote_addr: Option<String>,
    /// Its `init` features (BOLT 9 order), while connected.
    pub features: Option<Vec<u8>>,
    /// Whether it connected to us.
    pub inbound: bool,
    /// Channels with it.
    pub num_channels: u32,
}

/// Which channel a call means: a peer's node id (its only channel), a channel id (hex),
/// or a short channel id (`block x tx x output`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRef(pub String);

/// A short channel id as CLN writes it: `block x tx x output`.
pub fn scid(id: u64) -> String {
    format!("{}x{}x{}", id >> 40, (id >> 16) & 0xff_ffff, id & 0xffff)
}

impl Node {
    /// Connects to the peer `id` at `addr` (the signer must be attached: the handshake
    /// needs the node key); a peer already connected is left as it is.
    pub async fn connect(&self, id: PublicKey, addr: SocketAddr) -> Result<Peer, NodeError> {
        let running = self.with_signer("connection's handshake").await?;
        let pm = running.peer_manager.clone();
        let peer = {
            let pm = pm.clone();
            move || pm.peer_by_node_id(&id)
        };
        if self.on_ldk(peer.clone()).await?.is_none() {
            // The handshake's first step signs (ECDH): on the LDK runtime, like the rest of
            // the connection.
            let connecting = self
                .ldk_runtime
                .spawn(async move {
                    let c = super::peers::connect_outbound(pm, id, addr).await?;
                    tokio::spawn(c);
                    Some(())
                })
                .await
                .map_err(|e| NodeError::Internal(format!("connection task failed: {e}")))?;
            if connecting.is_none() {
                return Err(NodeError::Unreachable(format!("cannot connect to {addr}")));
            }
            let until = tokio::time::Instant::now() + HANDSHAKE;
            while self.on_ldk(peer.clone()).await?.is_none() {
                if tokio::time::Instant::now() >= until {
                    return Err(NodeError::Unreachable(format!(
                        "{id} at {addr} did not complete the handshake"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        peers::remember(&running.ldk.store, &id, addr);
        let details = self
            .on_ldk(peer)
            .await?
            .ok_or_else(|| NodeError::Unreachable(format!("{id} disconnected at once")))?;
        self.on_ldk(move || described(&running, id, Some(&details), 0))
            .await
    }

    /// The connected peers and those with channels, in node id order (only `only`, if
    /// given).
    pub async fn peers(&self, only: Option<PublicKey>) -> Result<Vec<Peer>, NodeError> {
        let running = self.started("its peers").await?;
        self.on_ldk(move || {
            let channels = running.ldk.channel_manager.list_channels();
            let connected = running.peer_manager.list_peers();
            let mut ids: Vec<PublicKey> = connected
                .iter()
                .map(|p| p.counterparty_node_id)
                .chain(channels.iter().map(|c| c.counterparty.node_id))
                .filter(|id| only.is_none_or(|w| w == *id))
                .collect();
            ids.sort();
            ids.dedup();
            ids.into_iter()
                .map(|id| {
                    let live = connected.iter().find(|p| p.counterparty_node_id == id);
                    let count = channels
                        .iter()
                        .filter(|c| c.counterparty.node_id == id)
                        .count();
                    described(&running, id, live, count as u32)
                })
                .collect()
        })
        .await
    }

    /// The node's channels.
    pub async fn channels(&self) -> Result<Vec<Channel>, NodeError> {
        let running = self.started("its channels").await?;
        self.channels_of(&running).await
    }

    async fn channels_of(&self, running: &Arc<Running>) -> Result<Vec<Channel>, NodeError> {
        let running = running.clone();
        self.on_ldk(move || channel_list(&running)).await
    }

    /// Opens a channel of `sats` to the connected peer `peer`, funded from the wallet at
    /// `fee`, with every signature (commitments, then the funding inputs) made by the
    /// signer; returns once the funding is broadcast.
    pub async fn fund_channel(
        &self,
        peer: PublicKey,
        sats: u64,
        announce: bool,
        fee: FeeRate,
    ) -> Result<Funded, NodeError> {
        let running = self.with_signer("channel opening").await?;
        let sat_per_kw = fee.sat_per_kw(&running.fees);
        let pm = running.peer_manager.clone();
        if self
            .on_ldk(move || pm.peer_by_node_id(&peer))
            .await?
            .is_none()
        {
            return Err(NodeError::Precondition(format!(
                "not connected to {peer}: connect to the peer first"
            )));
        }
        let user_channel_id = u128::from_be_bytes({
            let mut b = [0u8; 16];
            getrandom::getrandom(&mut b).map_err(|e| NodeError::Internal(e.to_string()))?;
            b
        });
        let outcome = self.fundings.start(user_channel_id, sat_per_kw);
        let mut config = ldk::user_config();
        config.channel_handshake_config.announce_for_forwarding = announce;
        let cm = running.ldk.channel_manager.clone();
        let created = self
            .on_ldk(move || cm.create_channel(peer, sats, 0, user_channel_id, None, Some(config)))
            .await?;
        if let Err(e) = created {
            self.fundings.abandon(user_channel_id);
            return Err(NodeError::Precondition(format!(
                "cannot open the channel: {e:?}"
            )));
        }
        match tokio::time::timeout(OPENING, outcome).await {
            Ok(Ok(Ok(f))) => Ok(f),
            Ok(Ok(Err(why))) => Err(NodeError::Precondition(why)),
            Ok(Err(_)) => Err(NodeError::Internal("the opening was dropped".into())),
            Err(_) => Err(NodeError::Unreachable(format!(
                "the opening did not complete within {} s (the peer or the signer did not answer); see ListPeerChannels",
                OPENING.as_secs()
            ))),
        }
    }
}

/// The node's channels, as LDK has them now (call on LDK's runtime).
pub(super) fn channel_list(running: &Running) -> Vec<Channel> {
    let connected = peers::connected(&running.peer_manager);
    running
        .ldk
        .channel_manager
        .list_channels()
        .into_iter()
        .map(|details| Channel {
            our_balance_msat: our_balance_msat(running, &details),
            peer_connected: connected.contains(&details.counterparty.node_id),
            details,
        })
        .collect()
}

/// A peer as listed: `live` while connected.
fn described(
    running: &Running,
    id: PublicKey,
    live: Option<&PeerDetails>,
    num_channels: u32,
) -> Peer {
    let remote_addr = live.and_then(|p| p.socket_address.as_ref().map(|a| a.to_string()));
    Peer {
        id,
        connected: live.is_some(),
        netaddr: peers::remembered(&running.ldk.store, &id)
            .map(|a| a.to_string())
            .or_else(|| remote_addr.clone()),
        remote_addr,
        features: live.map(|p| bolt9(p.init_features.le_flags())),
        inbound: live.is_some_and(|p| p.is_inbound_connection),
        num_channels,
    }
}

/// What is ours in a channel, from its monitor.
fn our_balance_msat(running: &Running, c: &ChannelDetails) -> u64 {
    running
        .ldk
        .chain_monitor
        .get_monitor(c.channel_id)
        .map(|m| {
            m.get_claimable_balances()
                .iter()
                .map(|b| b.claimable_amount_satoshis())
                .sum::<u64>()
                * 1000
        })
        .unwrap_or(0)
}

/// The channel `id` names (see [`ChannelRef`]).
pub(super) fn pick<'a>(channels: &'a [ChannelDetails], id: &str) -> Result<&'a ChannelDetails, NodeError> {
    if let Ok(peer) = id.parse::<PublicKey>() {
        let theirs: Vec<_> = channels
            .iter()
            .filter(|c| c.counterparty.node_id == peer)
            .collect();
        return match theirs.as_slice() {
            [one] => Ok(one),
            [] => Err(NodeError::NotFound(format!("no channel with {peer}"))),
            _ => Err(NodeError::Invalid(format!(
                "several channels with {peer}: name one by its channel id"
            ))),
        };
    }
    channels
        .iter()
        .find(|c| {
            hex::encode(c.channel_id.0) == id || c.short_channel_id.map(scid).as_deref() == Some(id)
        })
        .ok_or_else(|| NodeError::NotFound(format!("no channel {id}")))
}
