//! The LDK node's parts, with every key on the tenant's signer (through [`RemoteKeys`]).
//!
//! Here: the logger, fee table and broadcast queue LDK calls synchronously, the types of the
//! node's LDK objects, and [`new_node`] and [`restore_node`], which build them new or read
//! them back from the store. Chain sync, peers and the background processor that drive
//! them are the node module's `chain`, `peers` and `events`.

use std::io::Cursor;
use std::sync::{Arc, RwLock};

use lightning::chain::chaininterface::{BroadcasterInterface, ConfirmationTarget, FeeEstimator};
use lightning::chain::channelmonitor::ChannelMonitor;
use lightning::chain::{BestBlock, Filter, chainmonitor};
use lightning::ln::channelmanager::{self, ChainParameters, ChannelManagerReadArgs};
use lightning::ln::peer_handler::{self, IgnoringMessageHandler};
use lightning::onion_message::messenger::DefaultMessageRouter;
use lightning::routing::gossip::{NetworkGraph, P2PGossipSync};
use lightning::routing::router::DefaultRouter;
use lightning::routing::scoring::{
    ProbabilisticScorer, ProbabilisticScoringDecayParameters, ProbabilisticScoringFeeParameters,
};
use lightning::routing::utxo::UtxoLookup;
use lightning::sign::NodeSigner;
use lightning::util::config::UserConfig;
use lightning::util::logger::{Level, Logger as LdkLogger, Record};
use lightning::util::persist::{self as persist, KVStoreSync, read_channel_monitors};
use lightning::util::ser::{ReadableArgs, Writeable};
use crate::store::ldk_store::LdkStore;
use lightning_signer::bitcoin::{BlockHash, Network, Transaction};
use lightning_signer::lightning;
use tokio::sync::mpsc;

use crate::signer_link::channel::ChannelSigner;
use crate::signer_link::keys::RemoteKeys;

/// LDK's log lines, into tracing.
pub struct Logger;

impl LdkLogger for Logger {
    fn log(&self, record: Record) {
        let module = record.module_path;
        match record.level {
            Level::Gossip | Level::Trace => {
                // The peer tells two nodes in one process (the payments bench) apart.
                tracing::trace!(
                    target: "ldk",
                    %module,
                    peer = ?record.peer_id.map(|p| p.to_string()[..8].to_string()),
                    "{}",
                    record.args
                )
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
    /// The most recent transactions broadcast, newest last (a closing call reports its
    /// transaction from here).
    recent: std::sync::Mutex<std::collections::VecDeque<Transaction>>,
}

/// How many broadcast transactions are remembered.
const RECENT_BROADCASTS: usize = 64;

impl Broadcaster {
    /// A broadcaster and the receiving end of its queue.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Vec<Transaction>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Broadcaster {
                queue: tx,
                recent: Default::default(),
            },
            rx,
        )
    }
}

impl Broadcaster {
    /// The latest transaction broadcast that spends `outpoint`.
    pub fn spending(&self, outpoint: lightning_signer::bitcoin::OutPoint) -> Option<Transaction> {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .rev()
            .find(|t| t.input.iter().any(|i| i.previous_output == outpoint))
            .cloned()
    }
}

impl BroadcasterInterface for Broadcaster {
    fn broadcast_transactions(&self, txs: &[&Transaction]) {
        {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            for t in txs {
                recent.push_back((*t).clone());
            }
            while recent.len() > RECENT_BROADCASTS {
                recent.pop_front();
            }
        }
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
    ChannelSigner,
    Arc<dyn Filter + Send + Sync>,
    Arc<Broadcaster>,
    Arc<FeeRates>,
    Arc<Logger>,
    Arc<LdkStore>,
    Arc<RemoteKeys>,
>;
/// A channel monitor.
pub type Monitor = ChannelMonitor<ChannelSigner>;
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
/// Gossip from peers into the graph (no UTXO lookup: channels are taken as announced).
pub type GossipSync = P2PGossipSync<Arc<Graph>, Arc<dyn UtxoLookup + Send + Sync>, Arc<Logger>>;
/// The peer manager. Onion messages (BOLT12) are not handled yet.
pub type PeerManager = peer_handler::PeerManager<
    lightning_net_tokio::SocketDescriptor,
    Arc<ChannelManager>,
    Arc<GossipSync>,
    Arc<IgnoringMessageHandler>,
    Arc<Logger>,
    Arc<IgnoringMessageHandler>,
    Arc<RemoteKeys>,
    Arc<ChainMonitor>,
>;

/// The node's LDK objects.
pub struct LdkNode {
    /// The channel manager.
    pub channel_manager: Arc<ChannelManager>,
    /// The chain monitor.
    pub chain_monitor: Arc<ChainMonitor>,
    /// The network graph.
    pub graph: Arc<Graph>,
    /// The payment scorer.
    pub scorer: Arc<RwLock<Scorer>>,
    /// The keys (on the signer).
    pub keys: Arc<RemoteKeys>,
    /// The store.
    pub store: Arc<LdkStore>,
    /// The logger.
    pub logger: Arc<Logger>,
}

/// A node read back from the store, with the blocks each part last saw: they must be
/// brought to the chain's tip before the node is used, and the monitors then handed to the
/// chain monitor (see [`Restored::finish`]).
pub struct Restored {
    /// The node.
    pub node: LdkNode,
    /// The block the channel manager last saw.
    pub manager_block: BlockHash,
    /// Each channel monitor with the block it last saw.
    pub monitors: Vec<(BlockHash, Monitor)>,
}

impl Restored {
    /// Hands the (synced) monitors to the chain monitor.
    pub fn finish(self) -> std::io::Result<LdkNode> {
        for (_, monitor) in self.monitors {
            let id = monitor.channel_id();
            self.node
                .chain_monitor
                .load_existing_monitor(id, monitor)
                .map_err(|()| std::io::Error::other(format!("cannot load channel monitor {id}")))?;
        }
        Ok(self.node)
    }
}

/// What a node is built from.
pub struct Parts {
    /// Bitcoin network.
    pub network: Network,
    /// The keys.
    pub keys: Arc<RemoteKeys>,
    /// The store.
    pub store: Arc<LdkStore>,
    /// The fee table.
    pub fees: Arc<FeeRates>,
    /// The broadcast queue.
    pub broadcaster: Arc<Broadcaster>,
}

/// Whether a node is stored. Only a channel manager that is not there means a new node:
/// any other failure to read it is an error, and so are channel monitors stored without
/// their manager. Starting a new node over either would abandon the channels' funds.
pub fn has_node<S: KVStoreSync + ?Sized>(store: &S) -> std::io::Result<bool> {
    let manager = store.read(
        persist::CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE,
        persist::CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE,
        persist::CHANNEL_MANAGER_PERSISTENCE_KEY,
    );
    match manager {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == lightning::io::ErrorKind::NotFound => {
            let monitors = store.list(
                persist::CHANNEL_MONITOR_PERSISTENCE_PRIMARY_NAMESPACE,
                persist::CHANNEL_MONITOR_PERSISTENCE_SECONDARY_NAMESPACE,
            )?;
            if monitors.is_empty() {
                Ok(false)
            } else {
                Err(std::io::Error::other(format!(
                    "{} channel monitor(s) are stored but no channel manager: node-host will not start a new node over them; restore the channel manager from a backup",
                    monitors.len()
                )))
            }
        }
        Err(e) => Err(std::io::Error::other(format!(
            "cannot read the stored channel manager: {e}"
        ))),
    }
}

/// Builds a new node (no channels yet) at `best_block`, and stores its channel manager so
/// that a restart reads it back rather than starting over.
pub fn new_node(parts: Parts, best_block: BestBlock, now_secs: u32) -> std::io::Result<LdkNode> {
    let logger = Arc::new(Logger);
    let graph = Arc::new(Graph::new(parts.network, logger.clone()));
    let scorer = Arc::new(RwLock::new(Scorer::new(
        ProbabilisticScoringDecayParameters::default(),
        graph.clone(),
        logger.clone(),
    )));
    let (chain_monitor, router, message_router) = wiring(&parts, &logger, &graph, &scorer);
    let channel_manager = Arc::new(ChannelManager::new(
        parts.fees,
        chain_monitor.clone(),
        parts.broadcaster,
        router,
        message_router,
        logger.clone(),
        parts.keys.clone(),
        parts.keys.clone(),
        parts.keys.clone(),
        user_config(),
        ChainParameters {
            network: parts.network,
            best_block,
        },
        now_secs,
    ));
    parts.store.write(
        persist::CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE,
        persist::CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE,
        persist::CHANNEL_MANAGER_PERSISTENCE_KEY,
        channel_manager.encode(),
    )?;
    Ok(LdkNode {
        channel_manager,
        chain_monitor,
        graph,
        scorer,
        keys: parts.keys,
        store: parts.store,
        logger,
    })
}

/// Reads the node back from the store: graph, scorer, channel monitors (their signers are
/// derived through the signer) and channel manager.
pub fn restore_node(parts: Parts) -> std::io::Result<Restored> {
    let logger = Arc::new(Logger);
    let store = parts.store.clone();
    let read = |key: &str| {
        store.read(
            persist::NETWORK_GRAPH_PERSISTENCE_PRIMARY_NAMESPACE,
            persist::NETWORK_GRAPH_PERSISTENCE_SECONDARY_NAMESPACE,
            key,
        )
    };
    let graph = Arc::new(
        read(persist::NETWORK_GRAPH_PERSISTENCE_KEY)
            .ok()
            .and_then(|b| Graph::read(&mut Cursor::new(b), logger.clone()).ok())
            .unwrap_or_else(|| Graph::new(parts.network, logger.clone())),
    );
    let decay = ProbabilisticScoringDecayParameters::default();
    let scorer = Arc::new(RwLock::new(
        read(persist::SCORER_PERSISTENCE_KEY)
            .ok()
            .and_then(|b| {
                Scorer::read(&mut Cursor::new(b), (decay, graph.clone(), logger.clone())).ok()
            })
            .unwrap_or_else(|| Scorer::new(decay, graph.clone(), logger.clone())),
    ));
    let monitors = read_channel_monitors(store.clone(), parts.keys.clone(), parts.keys.clone())?;
    let (chain_monitor, router, message_router) = wiring(&parts, &logger, &graph, &scorer);
    let manager_bytes = store.read(
        persist::CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE,
        persist::CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE,
        persist::CHANNEL_MANAGER_PERSISTENCE_KEY,
    )?;
    let args = ChannelManagerReadArgs::new(
        parts.keys.clone(),
        parts.keys.clone(),
        parts.keys.clone(),
        parts.fees,
        chain_monitor.clone(),
        parts.broadcaster,
        router,
        message_router,
        logger.clone(),
        user_config(),
        monitors.iter().map(|(_, m)| m).collect(),
    );
    let (manager_block, channel_manager) =
        <(BlockHash, ChannelManager)>::read(&mut Cursor::new(manager_bytes), args)
            .map_err(|e| std::io::Error::other(format!("the stored channel manager: {e:?}")))?;
    Ok(Restored {
        node: LdkNode {
            channel_manager: Arc::new(channel_manager),
            chain_monitor,
            graph,
            scorer,
            keys: parts.keys,
            store,
            logger,
        },
        manager_block,
        monitors,
    })
}

fn wiring(
    parts: &Parts,
    logger: &Arc<Logger>,
    graph: &Arc<Graph>,
    scorer: &Arc<RwLock<Scorer>>,
) -> (Arc<ChainMonitor>, Arc<Router>, Arc<MessageRouter>) {
    let chain_monitor = Arc::new(ChainMonitor::new(
        None,
        parts.broadcaster.clone(),
        logger.clone(),
        parts.fees.clone(),
        parts.store.clone(),
        parts.keys.clone(),
        parts.keys.get_peer_storage_key(),
    ));
    let router = Arc::new(Router::new(
        graph.clone(),
        logger.clone(),
        parts.keys.clone(),
        scorer.clone(),
        ProbabilisticScoringFeeParameters::default(),
    ));
    let message_router = Arc::new(MessageRouter::new(graph.clone(), parts.keys.clone()));
    (chain_monitor, router, message_router)
}

/// The channel settings every node-host uses. Anchors and splicing stay off: the upstream
/// signer client cannot sign anchor spends or splices (docs/architecture.md, "Known gaps").
pub fn user_config() -> UserConfig {
    let mut c = UserConfig::default();
    c.channel_handshake_config
        .negotiate_anchors_zero_fee_htlc_tx = false;
    c.channel_handshake_config
        .negotiate_anchor_zero_fee_commitments = false;
    c
}

#[cfg(test)]
mod tests;
