//! Peers: the peer manager, and connections only while a signer is attached.
//!
//! With the signer away, LDK would still ask it for things it cannot wait for (the noise
//! handshake's ECDH, a reconnecting channel's commitment point), and upstream's client
//! panics when those fail. So no peer is accepted without a signer, and every peer is
//! dropped when the last signer leaves (ldk-vls.md §6.3).

use std::sync::Arc;
use std::time::Duration;

use lightning_signer::lightning::ln::peer_handler::{IgnoringMessageHandler, MessageHandler};
use lightning_signer::lightning::routing::utxo::UtxoLookup;
use lightning_signer::lightning::sign::EntropySource;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::ldk::{self, GossipSync, PeerManager};
use crate::stage::Stage;

/// Builds the peer manager and the gossip handler it feeds.
pub fn peer_manager(node: &ldk::Node) -> (Arc<PeerManager>, Arc<GossipSync>) {
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
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
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
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
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
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        tokio::spawn(lightning_net_tokio::setup_inbound(
            peer_manager.clone(),
            stream,
        ));
    }
}

/// Drops every peer when the last signer leaves, until `stop`.
pub async fn disconnect_without_signer(
    peer_manager: Arc<PeerManager>,
    stage: Arc<Stage>,
    mut stop: watch::Receiver<bool>,
) {
    let mut had_signer = stage.signers() > 0;
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let has_signer = stage.signers() > 0;
        if had_signer && !has_signer {
            let pm = peer_manager.clone();
            // It may wait for threads blocked in signer calls (they end at their deadline).
            let _ = tokio::task::spawn_blocking(move || {
                if !pm.list_peers().is_empty() {
                    tracing::info!("the signer left: disconnecting every peer");
                    pm.disconnect_all_peers();
                }
            })
            .await;
        }
        had_signer = has_signer;
    }
}
