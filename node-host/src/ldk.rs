//! The LDK node's parts, with every key on the tenant's signer (through [`RemoteKeys`]).
//!
//! Built so far: the channel manager and chain monitor with their logger, fee table,
//! broadcast queue and on-disk store. Not yet: chain sync, peers, the background processor.

use std::sync::{Arc, Mutex, RwLock};

use lightning::chain::chaininterface::{BroadcasterInterface, ConfirmationTarget, FeeEstimator};
use lightning::chain::{BestBlock, Filter, chainmonitor};
use lightning::ln::channelmanager::{self, ChainParameters};
use lightning::onion_message::messenger::DefaultMessageRouter;
use lightning::routing::gossip::NetworkGraph;
use lightning::routing::router::DefaultRouter;
use lightning::routing::scoring::{
    ProbabilisticScorer, ProbabilisticScoringDecayParameters, ProbabilisticScoringFeeParameters,
};
use lightning::sign::NodeSigner;
use lightning::util::config::UserConfig;
use lightning::util::logger::{Level, Logger as LdkLogger, Record};
use lightning_persister::fs_store::FilesystemStore;
use lightning_signer::bitcoin::{Network, Transaction};
use lightning_signer::lightning;
use tokio::sync::mpsc;
use vls_protocol_client::SignerClient;

use crate::keys::RemoteKeys;

/// LDK's log lines, into tracing.
pub struct Logger;

impl LdkLogger for Logger {
    fn log(&self, record: Record) {
        let module = record.module_path;
        match record.level {
            Level::Gossip | Level::Trace => {
                tracing::trace!(target: "ldk", %module, "{}", record.args)
            }
            Level::Debug => tracing::debug!(target: "ldk", %module, "{}", record.args),
            Level::Info => tracing::info!(target: "ldk", %module, "{}", record.args),
            Level::Warn => tracing::warn!(target: "ldk", %module, "{}", record.args),
            Level::Error => tracing::error!(target: "ldk", %module, "{}", record.args),
        }
    }
}

/// LDK's fee floor, sat per 1000 weight units.
pub const FEE_FLOOR: u32 = 253;

/// Fee rates by target, sat per 1000 weight units. LDK asks synchronously, so the table is
/// held here and refreshed from the chain by a task.
pub struct FeeRates {
    rates: RwLock<Vec<(ConfirmationTarget, u32)>>,
    default: u32,
}

impl FeeRates {
    /// Every target at `sat_per_kw` (never below the floor).
    pub fn flat(sat_per_kw: u32) -> Self {
        FeeRates {
            rates: RwLock::new(Vec::new()),
            default: sat_per_kw.max(FEE_FLOOR),
        }
    }

    /// Sets the rate of one target.
    pub fn set(&self, target: ConfirmationTarget, sat_per_kw: u32) {
        let mut rates = self.rates.write().unwrap_or_else(|p| p.into_inner());
        rates.retain(|(t, _)| *t != target);
        rates.push((target, sat_per_kw.max(FEE_FLOOR)));
    }
}

impl FeeEstimator for FeeRates {
    fn get_est_sat_per_1000_weight(&self, target: ConfirmationTarget) -> u32 {
        match target {
            // What a peer's commitment may pay at least: the floor, so a calm chain never
            // makes us refuse a peer's update_fee.
            ConfirmationTarget::MinAllowedAnchorChannelRemoteFee
            | ConfirmationTarget::MinAllowedNonAnchorChannelRemoteFee => FEE_FLOOR,
            t => self
                .rates
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .find(|(k, _)| *k == t)
                .map(|(_, v)| *v)
                .unwrap_or(self.default),
        }
    }
}

/// Transactions LDK wants broadcast, queued for the task that submits them to the chain
/// (LDK's call is synchronous and must not wait on the network).
pub struct Broadcaster {
    queue: mpsc::UnboundedSender<Vec<Transaction>>,
}

impl Broadcaster {
    /// A broadcaster and the receiving end of its queue.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Vec<Transaction>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Broadcaster { queue: tx }, rx)
    }
}

impl BroadcasterInterface for Broadcaster {
    fn broadcast_transactions(&self, txs: &[&Transaction]) {
        // Several at once are a package: keep them together.
        if self
            .queue
            .send(txs.iter().map(|t| (*t).clone()).collect())
            .is_err()
        {
            tracing::error!("broadcast queue closed; transactions not sent");
        }
    }
}

/// The network graph.
pub type Graph = NetworkGraph<Arc<Logger>>;
/// The payment scorer.
pub type Scorer = ProbabilisticScorer<Arc<Graph>, Arc<Logger>>;
/// The chain monitor.
pub type ChainMonitor = chainmonitor::ChainMonitor<
    SignerClient,
    Arc<dyn Filter + Send + Sync>,
    Arc<Broadcaster>,
    Arc<FeeRates>,
    Arc<Logger>,
    Arc<FilesystemStore>,
    Arc<RemoteKeys>,
>;
/// The payment router.
pub type Router = DefaultRouter<
    Arc<Graph>,
    Arc<Logger>,
    Arc<RemoteKeys>,
    Arc<RwLock<Scorer>>,
    ProbabilisticScoringFeeParameters,
    Scorer,
>;
/// The onion message router.
pub type MessageRouter = DefaultMessageRouter<Arc<Graph>, Arc<Logger>, Arc<RemoteKeys>>;
/// The channel manager.
pub type ChannelManager = channelmanager::ChannelManager<
    Arc<ChainMonitor>,
    Arc<Broadcaster>,
    Arc<RemoteKeys>,
    Arc<RemoteKeys>,
    Arc<RemoteKeys>,
    Arc<FeeRates>,
    Arc<Router>,
    Arc<MessageRouter>,
    Arc<Logger>,
>;

/// The node's LDK objects.
pub struct Node {
    /// The channel manager.
    pub channel_manager: Arc<ChannelManager>,
    /// The chain monitor.
    pub chain_monitor: Arc<ChainMonitor>,
    /// The network graph.
    pub graph: Arc<Graph>,
    /// The keys (on the signer).
    pub keys: Arc<RemoteKeys>,
    /// The store.
    pub store: Arc<FilesystemStore>,
    /// Serialises channel-manager writes.
    pub persist_lock: Mutex<()>,
}

/// Builds a new node (no channels yet) at `best_block`.
pub fn new_node(
    network: Network,
    keys: Arc<RemoteKeys>,
    store: Arc<FilesystemStore>,
    fees: Arc<FeeRates>,
    broadcaster: Arc<Broadcaster>,
    best_block: BestBlock,
    now_secs: u32,
) -> Node {
    let logger = Arc::new(Logger);
    let chain_monitor = Arc::new(ChainMonitor::new(
        None,
        broadcaster.clone(),
        logger.clone(),
        fees.clone(),
        store.clone(),
        keys.clone(),
        keys.get_peer_storage_key(),
    ));
    let graph = Arc::new(Graph::new(network, logger.clone()));
    let scorer = Arc::new(RwLock::new(Scorer::new(
        ProbabilisticScoringDecayParameters::default(),
        graph.clone(),
        logger.clone(),
    )));
    let router = Arc::new(Router::new(
        graph.clone(),
        logger.clone(),
        keys.clone(),
        scorer,
        ProbabilisticScoringFeeParameters::default(),
    ));
    let message_router = Arc::new(MessageRouter::new(graph.clone(), keys.clone()));
    let channel_manager = Arc::new(ChannelManager::new(
        fees,
        chain_monitor.clone(),
        broadcaster,
        router,
        message_router,
        logger,
        keys.clone(),
        keys.clone(),
        keys.clone(),
        user_config(),
        ChainParameters {
            network,
            best_block,
        },
        now_secs,
    ));
    Node {
        channel_manager,
        chain_monitor,
        graph,
        keys,
        store,
        persist_lock: Mutex::new(()),
    }
}

/// The channel settings every node-host uses. Anchors and splicing stay off: the upstream
/// signer client cannot sign anchor spends or splices (ldk-vls.md §0).
pub fn user_config() -> UserConfig {
    let mut c = UserConfig::default();
    c.channel_handshake_config
        .negotiate_anchors_zero_fee_htlc_tx = false;
    c.channel_handshake_config
        .negotiate_anchor_zero_fee_commitments = false;
    c
}
