//! The tenant's Lightning node, behind one facade: [`Node`].
//!
//! LDK cannot be built without the signer: the node id, the inbound-payment key and every
//! channel's keys come from it (`HsmdInit2`, then one request per channel to read a stored
//! node back). So node-host serves its API and signer link from the start, and [`run()`]
//! waits for the first signer, then builds or restores the node, brings it to the chain's
//! tip, and runs it — chain polling, broadcasting, fee refresh, peers and LDK's background
//! processor — until node-host stops.
//!
//! The API asks [`Node`] for what it needs in the node's own terms (an invoice, the funds,
//! a payment) and maps the answers to its protocol; only this module touches LDK's
//! objects. Every call into LDK runs on LDK's runtime, off the one that serves the signer:
//! LDK's calls take locks a thread waiting for the signer may hold.

mod alerts;
mod chain;
pub mod chain_health;
mod channels;
mod close;
mod closing;
mod error;
mod events;
mod funding;
mod info;
mod invoices;
#[cfg(feature = "testing")]
pub mod ldk;
#[cfg(not(feature = "testing"))]
mod ldk;
mod onchain;
mod pay;
mod peers;
mod receive;
mod resolving;
mod run;
mod signer_chain;
mod start;
mod sweep;
mod unblock;
#[cfg(feature = "testing")]
pub mod wallet;
#[cfg(not(feature = "testing"))]
mod wallet;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lightning_signer::bitcoin::Network;
use lightning_signer::bitcoin::secp256k1::PublicKey;
use lightning_signer::lightning::types::payment::PaymentPreimage;
use tokio::sync::watch;

pub use channels::{Channel, ChannelRef, scid};
pub use close::CloseKind;
pub use error::NodeError;
pub use onchain::FeeRate;
pub use pay::RETRY_FOR;
pub use resolving::Resolving;
pub use run::{Settings, run};

use crate::signer_link::stage::Stage;
use crate::store::invoices::Invoices;
use crate::store::outbox::Outbox;
use crate::store::payments::Payments;
use wallet::Wallet;

/// The running node: LDK's objects and what drives them.
struct Running {
    ldk: ldk::LdkNode,
    peer_manager: Arc<ldk::PeerManager>,
    p2p_addr: SocketAddr,
    p2p_announce: Option<String>,
    wallet: Arc<Wallet>,
    fees: Arc<ldk::FeeRates>,
    broadcaster: Arc<ldk::Broadcaster>,
}

/// The node as the API sees it, running or not yet.
#[derive(Clone)]
pub struct Node {
    id: PublicKey,
    network: Network,
    running: watch::Sender<Option<Arc<Running>>>,
    height: watch::Sender<Option<u32>>,
    chain: watch::Sender<chain_health::ChainStatus>,
    invoices: Arc<Invoices>,
    payments: Arc<Payments>,
    outbox: Arc<Outbox>,
    fundings: Arc<funding::Fundings>,
    closings: Arc<closing::Closings>,
    stage: Arc<Stage>,
    signer_wait: Duration,
    ldk_runtime: tokio::runtime::Handle,
    /// Payments a `hold-claims` fault left unclaimed (tests only; see `signer_link::faults`).
    held_claims: Arc<std::sync::Mutex<Vec<PaymentPreimage>>>,
}

/// What the node is made of before it runs.
pub struct Parts {
    /// The tenant's node id.
    pub id: PublicKey,
    /// Bitcoin network.
    pub network: Network,
    /// The invoice store.
    pub invoices: Arc<Invoices>,
    /// The outgoing payments store.
    pub payments: Arc<Payments>,
    /// Where the events the node raises wait for the scheduler.
    pub outbox: Arc<Outbox>,
    /// The signing requests' stage (the node waits on it for a signer).
    pub stage: Arc<Stage>,
    /// How long a call that needs the signer waits for one to attach.
    pub signer_wait: Duration,
    /// The runtime LDK runs on (see the module's notes).
    pub ldk_runtime: tokio::runtime::Handle,
}

impl Node {
    /// A node not started yet: it starts in [`run()`].
    pub fn new(parts: Parts) -> Self {
        Node {
            id: parts.id,
            network: parts.network,
            running: watch::channel(None).0,
            height: watch::channel(None).0,
            chain: watch::channel(chain_health::ChainStatus::Unknown).0,
            invoices: parts.invoices,
            payments: parts.payments,
            outbox: parts.outbox,
            fundings: Arc::default(),
            closings: Arc::default(),
            stage: parts.stage,
            signer_wait: parts.signer_wait,
            ldk_runtime: parts.ldk_runtime,
            held_claims: Arc::default(),
        }
    }

    /// Whether a `hold-claims` fault names this node now (never without fault injection).
    fn holds_claims(&self) -> bool {
        crate::signer_link::faults::is_on_for(
            "hold-claims",
            &hex::encode(self.id.serialize()),
        )
    }

    /// The tenant's node id.
    pub fn id(&self) -> PublicKey {
        self.id
    }

    /// The network.
    pub fn network(&self) -> Network {
        self.network
    }

    fn current(&self) -> Option<Arc<Running>> {
        self.running.borrow().clone()
    }

    fn set_running(&self, running: Arc<Running>) {
        self.running.send_replace(Some(running));
    }

    fn set_height(&self, height: u32) {
        self.height.send_replace(Some(height));
    }

    /// Runs `f` (which calls into LDK) on the LDK runtime's blocking pool.
    async fn on_ldk<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, NodeError> {
        self.ldk_runtime
            .spawn_blocking(f)
            .await
            .map_err(|e| NodeError::Internal(format!("node task failed: {e}")))
    }

    /// The running node, waiting at most the signer wait for it to start (it starts when
    /// the signer first attaches); `what` names what was asked for.
    async fn started(&self, what: &str) -> Result<Arc<Running>, NodeError> {
        let mut rx = self.running.subscribe();
        match tokio::time::timeout(self.signer_wait, rx.wait_for(|r| r.is_some())).await {
            Ok(Ok(r)) => Ok(r.clone().expect("waited for it")),
            _ => Err(NodeError::NotStarted(what.to_string())),
        }
    }

    /// The running node with a signer attached, waiting at most the signer wait for both;
    /// `what` names what needs signing.
    async fn with_signer(&self, what: &str) -> Result<Arc<Running>, NodeError> {
        let until = tokio::time::Instant::now() + self.signer_wait;
        let running = self.started(what).await.ok();
        let never = tokio_util::sync::CancellationToken::new();
        let mut signers = self.stage.watch_signers();
        let attached = tokio::time::timeout_at(until, signers.attached(&never))
            .await
            .unwrap_or(false);
        match running {
            Some(r) if attached => Ok(r),
            _ => Err(NodeError::NoSigner {
                what: what.to_string(),
                waited: self.signer_wait,
            }),
        }
    }
}
