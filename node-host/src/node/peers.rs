//! Peers: the peer manager, new connections only while a signer is attached, and peers
//! kept when the signer leaves.
//!
//! A new connection needs the signer at once (the noise handshake's ECDH is the node key's),
//! so none is accepted or made without one. A peer already connected stays when the last
//! signer leaves: our channel signer parks what needs a signature (LDK 0.2's async
//! signing), so an HTLC that arrives for a sleeping device waits, the node raises
//! `signer_needed` for the app to wake its signer, and the payment completes when it
//! attaches.

use std::sync::Arc;
use std::time::Duration;

use lightning_signer::lightning::ln::peer_handler::{IgnoringMessageHandler, MessageHandler};
use lightning_signer::lightning::routing::utxo::UtxoLookup;
use lightning_signer::lightning::sign::EntropySource;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::node::ldk::{self, ChannelManager, GossipSync, PeerManager};
use crate::store::schema::PEERS_NAMESPACE;
use crate::signer_link::stage::Stage;
use crate::store::ldk_store::LdkStore;
use lightning_signer::bitcoin::secp256k1::PublicKey;
use lightning_signer::lightning::util::persist::KVStoreSync;

/// Builds the peer manager and the gossip handler it feeds.
pub fn peer_manager(node: &ldk::LdkNode) -> (Arc<PeerManager>, Arc<GossipSync>) {
    let gossip = Arc::new(GossipSync::new(
        node.graph.clone(),
        None::<Arc<dyn UtxoLookup + Send + Sync>>,
        node.logger.clone(),
    ));
    let handlers = MessageHandler {
        chan_handler: node.channel_manager.clone(),
        route_handler: gossip.clone(),
        onion_message_handler: Arc::new(IgnoringMessageHandler {}),
        custom_message_handler: Arc::new(IgnoringMessageHandler {}),
        send_only_message_handler: node.chain_monitor.clone(),
    };
    let now = crate::now_secs() as u32;
    let pm = Arc::new(PeerManager::new(
        handlers,
        now,
        &node.keys.get_secure_random_bytes(),
        node.logger.clone(),
        node.keys.clone(),
    ));
    (pm, gossip)
}

/// Accepts peers while a signer is attached, until `stop`.
pub async fn accept(
    listener: TcpListener,
    peer_manager: Arc<PeerManager>,
    stage: Arc<Stage>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => r,
        };
        let (stream, from) = match accepted {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept a peer");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if stage.signers() == 0 {
            tracing::info!(%from, "peer refused: no signer attached");
            continue;
        }
        // Without it, Nagle's algorithm holds each small Lightning message until the
        // peer's delayed ACK: tens of milliseconds per commitment exchange.
        let _ = stream.set_nodelay(true);
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        tokio::spawn(lightning_net_tokio::setup_inbound(
            peer_manager.clone(),
            stream,
        ));
    }
}

/// How long connecting to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to peer `id` at `addr` (TCP_NODELAY, as inbound peers); the connection's future,
/// to be spawned, or `None` if it cannot be reached.
pub async fn connect_outbound(
    peer_manager: Arc<PeerManager>,
    id: PublicKey,
    addr: std::net::SocketAddr,
) -> Option<impl std::future::Future<Output = ()>> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    let _ = stream.set_nodelay(true);
    let stream = stream.into_std().ok()?;
    Some(lightning_net_tokio::setup_outbound(peer_manager, id, stream))
}

/// Listens for peers: at `--p2p-listen`, or, when that names port 0, at the address used
/// before (a node that moved would not be found by its channel peers).
pub async fn listen(settings: &super::Settings) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    use crate::store::schema::{NODE, P2P_ADDR};
    // Where the node listened last: peers with channels reconnect there.
    let kv = settings.store.kv();
    let previous = kv
        .read(NODE.primary, NODE.secondary, P2P_ADDR)
        .context("cannot read where the node listened")?
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.trim().parse::<std::net::SocketAddr>().ok());
    let wanted = match previous {
        Some(p) if settings.p2p_listen.port() == 0 && p.ip() == settings.p2p_listen.ip() => p,
        _ => settings.p2p_listen,
    };
    let listener = match TcpListener::bind(wanted).await {
        Ok(l) => l,
        // Taken since: any port will do, and peers learn it when we connect to them.
        Err(_) if wanted != settings.p2p_listen => TcpListener::bind(settings.p2p_listen).await?,
        Err(e) => return Err(e).context(format!("cannot listen for peers on {wanted}")),
    };
    let addr = listener.local_addr()?;
    if previous != Some(addr) {
        kv.write(NODE.primary, NODE.secondary, P2P_ADDR, addr.to_string().as_bytes())
            .context("cannot store where the node listens")?;
    }
    Ok(listener)
}

/// Remembers where `peer` listens, for reconnecting.
pub fn remember(store: &LdkStore, peer: &PublicKey, addr: std::net::SocketAddr) {
    if let Err(e) = store.write(
        PEERS_NAMESPACE,
        "",
        &peer.to_string(),
        addr.to_string().into_bytes(),
    ) {
        tracing::warn!(%peer, error = %e, "cannot remember the peer's address");
    }
}

/// The node ids of the peers connected now.
pub fn connected(peer_manager: &PeerManager) -> Vec<PublicKey> {
    peer_manager
        .list_peers()
        .into_iter()
        .map(|p| p.counterparty_node_id)
        .collect()
}

/// Where `peer` was last known to listen.
pub fn remembered(store: &LdkStore, peer: &PublicKey) -> Option<std::net::SocketAddr> {
    let bytes = store.read(PEERS_NAMESPACE, "", &peer.to_string()).ok()?;
    String::from_utf8(bytes).ok()?.parse().ok()
}

/// While a signer is attached, reconnects to every channel peer whose address is known,
/// every few seconds, until `stop`.
pub async fn reconnect(
    channel_manager: Arc<ChannelManager>,
    peer_manager: Arc<PeerManager>,
    store: Arc<LdkStore>,
    stage: Arc<Stage>,
    stop: CancellationToken,
) {
    let mut signers = stage.watch_signers();
    loop {
        if !signers.attached(&stop).await {
            return;
        }
        let (cm, pm) = (channel_manager.clone(), peer_manager.clone());
        let missing = tokio::task::spawn_blocking(move || {
            let connected = connected(&pm);
            let mut missing: Vec<_> = cm
                .list_channels()
                .into_iter()
                .map(|c| c.counterparty.node_id)
                .filter(|id| !connected.contains(id))
                .collect();
            missing.dedup();
            missing
        })
        .await
        .unwrap_or_default();
        for peer in missing {
            if let Some(addr) = remembered(&store, &peer) {
                tracing::info!(%peer, %addr, "reconnecting to a channel peer");
                let pm = peer_manager.clone();
                tokio::spawn(async move {
                    if let Some(c) = connect_outbound(pm, peer, addr).await {
                        c.await;
                    }
                });
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}
