//! The node's life: wait for the first signer, build or read back the node, run it until
//! node-host stops, and stop in an order that never leaves a channel half-way.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use skylight_client::chain::ChainClient;
use tokio_util::sync::CancellationToken;

use super::{Node, Running, chain, chain_health, events, peers, receive, signer_chain, start, unblock};

/// How the node runs.
pub struct Settings {
    /// The chain.
    pub chain: Arc<ChainClient>,
    /// Where peers connect.
    pub p2p_listen: SocketAddr,
    /// The host peers are told to reach the node at, if any.
    pub p2p_announce: Option<String>,
    /// How long a signing request waits for a signer.
    pub signer_deadline: Duration,
    /// How often the chain is polled for a new tip.
    pub chain_poll: Duration,
    /// LDK's store (on the node's state backend).
    pub store: Arc<crate::store::ldk_store::LdkStore>,
    /// The runtime that serves the signer. The signer's chain is fed from there: LDK's own
    /// threads may all be waiting for a signature that needs those blocks.
    pub io: tokio::runtime::Handle,
}

/// Runs the node until `stop` is cancelled: waits for a signer, builds the node, runs it.
pub async fn run(
    settings: Settings,
    node: Node,
    stop: CancellationToken,
) -> Result<()> {
    let stage = node.stage.clone();
    // Built only from a chain that answers on the node's network (it may be down now, or
    // not yet started: the node waits, and Getinfo says why).
    if !chain_health::ready(&settings.chain, &node, &stop).await? {
        return Ok(());
    }
    let Some(keys) = start::keys_from_signer(&settings, &node, &stop).await? else {
        return Ok(());
    };
    let built = start::build(&settings, keys, &node).await?;
    let mut tasks = tokio::task::JoinSet::new();
    let (ldk, tip, queue, fees) = (built.node, built.tip, built.queue, built.fees);
    let (wallet, broadcaster, sweeper) = (built.wallet, built.broadcaster, built.sweeper);
    tasks.spawn(chain::broadcast(settings.chain.clone(), queue));
    tasks.spawn(chain::refresh_fees(
        settings.chain.clone(),
        fees.clone(),
        stop.clone(),
    ));
    tasks.spawn(chain::follow(
        settings.chain.clone(),
        node.network,
        tip,
        chain::Listeners {
            monitor: ldk.chain_monitor.clone(),
            manager: ldk.channel_manager.clone(),
            sweeper: sweeper.clone(),
            wallet: wallet.clone(),
        },
        node.clone(),
        settings.chain_poll,
        stop.clone(),
    ));
    let (peer_manager, gossip) = peers::peer_manager(&ldk);
    let listener = peers::listen(&settings).await?;
    let p2p_addr = listener.local_addr()?;
    tasks.spawn(peers::accept(
        listener,
        peer_manager.clone(),
        stage.clone(),
        stop.clone(),
    ));
    tasks.spawn(peers::reconnect(
        ldk.channel_manager.clone(),
        peer_manager.clone(),
        ldk.store.clone(),
        stage.clone(),
        stop.clone(),
    ));
    let feeder = settings.io.spawn(signer_chain::feed(
        settings.chain.clone(),
        ldk.keys.clone(),
        stage.clone(),
        ldk.channel_manager.clone(),
        ldk.chain_monitor.clone(),
        stop.clone(),
    ));
    tasks.spawn(receive::run(
        ldk.channel_manager.clone(),
        super::ldk::user_config().accept_forwards_to_priv_channels,
        stop.clone(),
    ));
    tasks.spawn(unblock::run(
        ldk.keys.channels().clone(),
        stage.clone(),
        ldk.channel_manager.clone(),
        ldk.chain_monitor.clone(),
        peer_manager.clone(),
        sweeper.clone(),
        stop.clone(),
    ));
    if crate::signer_link::faults::enabled() {
        tasks.spawn(events::release_held_claims(
            ldk.channel_manager.clone(),
            node.clone(),
            stop.clone(),
        ));
    }
    // The processor stops after the peers are gone (see below), on its own signal.
    let processor_stop = CancellationToken::new();
    let processor = tokio::spawn(events::background(
        &ldk,
        peer_manager.clone(),
        gossip,
        sweeper.clone(),
        node.clone(),
        processor_stop.clone(),
    ));
    let running = Arc::new(Running {
        ldk,
        peer_manager: peer_manager.clone(),
        p2p_addr,
        p2p_announce: settings.p2p_announce.clone(),
        wallet,
        fees,
        broadcaster,
    });
    node.set_running(running.clone());
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
