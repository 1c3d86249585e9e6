//! The tenant's Lightning node, run once its signer is there.
//!
//! LDK cannot be built without the signer: the node id, the inbound-payment key and every
//! channel's keys come from it (`HsmdInit2`, then one request per channel to read a stored
//! node back). So node-host serves its API and signer link from the start, and this task
//! waits for the first signer, then builds or restores the node, brings it to the chain's
//! tip, and runs it — chain polling, broadcasting, fee refresh, peers and LDK's background
//! processor — until node-host stops.

mod chain;
pub mod closing;
mod events;
pub mod funding;
pub mod peers;
mod signer_chain;
mod start;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use lightning_signer::bitcoin::Network;
use lightning_signer::bitcoin::secp256k1::PublicKey;
use skylight_client::chain::ChainClient;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::invoices::Invoices;
use crate::ldk;
use crate::paths::NodeDir;
use crate::payments::Payments;
use crate::stage::Stage;
use crate::wallet::Wallet;

/// How the node runs.
pub struct Settings {
    /// Bitcoin network.
    pub network: Network,
    /// The tenant's node id: the attached signer must have this one.
    pub node_id: PublicKey,
    /// node-host's data directory.
    pub dir: NodeDir,
    /// The chain.
    pub chain: Arc<ChainClient>,
    /// Where peers connect.
    pub p2p_listen: SocketAddr,
    /// How long a signing request waits for a signer.
    pub signer_deadline: Duration,
    /// How often the chain is polled for a new tip.
    pub chain_poll: Duration,
    /// The runtime that serves the signer. The signer's chain is fed from there: LDK's own
    /// threads may all be waiting for a signature that needs those blocks.
    pub io: tokio::runtime::Handle,
}

/// The running node.
pub struct Running {
    /// LDK's objects.
    pub ldk: ldk::Node,
    /// The peer manager.
    pub peer_manager: Arc<ldk::PeerManager>,
    /// Where peers connect.
    pub p2p_addr: SocketAddr,
    /// The on-chain wallet.
    pub wallet: Arc<Wallet>,
    /// The fee table.
    pub fees: Arc<ldk::FeeRates>,
    /// The broadcast queue.
    pub broadcaster: Arc<ldk::Broadcaster>,
}

/// The node as the API sees it: running or not yet, and the chain's height.
#[derive(Clone)]
pub struct NodeHandle {
    running: watch::Sender<Option<Arc<Running>>>,
    height: watch::Sender<Option<u32>>,
    /// The invoices.
    pub invoices: Arc<Invoices>,
    /// Channel fundings under way.
    pub fundings: Arc<funding::Fundings>,
    /// Outgoing payments.
    pub payments: Arc<Payments>,
    /// Calls waiting for channels to close.
    pub closings: Arc<closing::Closings>,
}

impl NodeHandle {
    /// A handle for a node not started yet.
    pub fn new(invoices: Arc<Invoices>, payments: Arc<Payments>) -> Self {
        NodeHandle {
            running: watch::channel(None).0,
            height: watch::channel(None).0,
            invoices,
            fundings: Arc::default(),
            closings: Arc::default(),
            payments,
        }
    }

    /// The node, if it runs.
    pub fn running(&self) -> Option<Arc<Running>> {
        self.running.borrow().clone()
    }

    /// The node, waiting at most `within` for it to start.
    pub async fn wait_running(&self, within: Duration) -> Option<Arc<Running>> {
        let mut rx = self.running.subscribe();
        let wait = rx.wait_for(|r| r.is_some());
        match tokio::time::timeout(within, wait).await {
            Ok(Ok(r)) => r.clone(),
            _ => None,
        }
    }

    /// The chain's height as last seen, if known.
    pub fn chain_height(&self) -> Option<u32> {
        *self.height.borrow()
    }

    pub(crate) fn set_height(&self, height: u32) {
        self.height.send_replace(Some(height));
    }
}

/// Runs the node until `stop` is cancelled: waits for a signer, builds the node, runs it.
pub async fn run(
    settings: Settings,
    stage: Arc<Stage>,
    handle: NodeHandle,
    stop: CancellationToken,
) -> Result<()> {
    // The chain's height is worth reporting before the node runs.
    if let Ok(h) = chain::height(&settings.chain).await {
        handle.set_height(h);
    }
    let Some(keys) = start::keys_from_signer(&settings, &stage, &stop).await? else {
        return Ok(());
    };
    let built = start::build(&settings, keys, &handle).await?;
    let mut tasks = tokio::task::JoinSet::new();
    let (node, tip, queue, fees) = (built.node, built.tip, built.queue, built.fees);
    let (wallet, broadcaster) = (built.wallet, built.broadcaster);
    tasks.spawn(chain::broadcast(settings.chain.clone(), queue));
    tasks.spawn(chain::refresh_fees(
        settings.chain.clone(),
        fees.clone(),
        stop.clone(),
    ));
    tasks.spawn(chain::follow(
        settings.chain.clone(),
        settings.network,
        tip,
        chain::Listeners {
            monitor: node.chain_monitor.clone(),
            manager: node.channel_manager.clone(),
            wallet: wallet.clone(),
        },
        handle.clone(),
        settings.chain_poll,
        stop.clone(),
    ));
    let (peer_manager, gossip) = peers::peer_manager(&node);
    let listener = peers::listen(&settings).await?;
    let p2p_addr = listener.local_addr()?;
    tasks.spawn(peers::accept(
        listener,
        peer_manager.clone(),
        stage.clone(),
        stop.clone(),
    ));
    tasks.spawn(peers::reconnect(
        node.channel_manager.clone(),
        peer_manager.clone(),
        node.store.clone(),
        stage.clone(),
        stop.clone(),
    ));
    let feeder = settings.io.spawn(signer_chain::feed(
        settings.chain.clone(),
        node.keys.clone(),
        stage.clone(),
        node.channel_manager.clone(),
        node.chain_monitor.clone(),
        stop.clone(),
    ));
    tasks.spawn(peers::disconnect_without_signer(
        peer_manager.clone(),
        stage.clone(),
        stop.clone(),
    ));
    // The processor stops after the peers are gone (see below), on its own signal.
    let processor_stop = CancellationToken::new();
    let processor = tokio::spawn(events::background(
        &node,
        peer_manager.clone(),
        gossip,
        handle.clone(),
        processor_stop.clone(),
    ));
    let running = Arc::new(Running {
        ldk: node,
        peer_manager: peer_manager.clone(),
        p2p_addr,
        wallet,
        fees,
        broadcaster,
    });
    handle.running.send_replace(Some(running.clone()));
    tracing::info!(
        node_id = %running.ldk.channel_manager.get_our_node_id(),
        %p2p_addr,
        "the Lightning node runs"
    );

    // Stopping, in an order that never leaves a channel half-way: first the peers go (the
    // signer is still attached, so signing under way completes and no new exchange
    // starts), then the background processor persists the channel manager one last time
    // and returns; only then does node-host stop serving the signer.
    stop.cancelled().await;
    let pm = peer_manager.clone();
    let _ = tokio::task::spawn_blocking(move || pm.disconnect_all_peers()).await;
    processor_stop.cancel();
    let result = processor
        .await
        .map_err(|e| anyhow::anyhow!("the background processor crashed: {e}"))?;
    tasks.shutdown().await;
    feeder.abort();
    result.context("the background processor failed")?;
    tracing::info!("the Lightning node stopped");
    Ok(())
}
