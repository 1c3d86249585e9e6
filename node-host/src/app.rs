//! node-host assembled: its stores, the signer link, the node server and the Lightning node,
//! started from a [`Config`] and run until a shutdown token is cancelled (SIGTERM, idle,
//! or the node failing).
//!
//! The stop order is what keeps channels whole: the Lightning node winds down first (peers,
//! then LDK's background processor) while the signer stays reachable, for at most
//! [`NODE_STOP_GRACE`]; then the signer link closes, which ends the signers' streams and
//! releases any LDK thread still waiting for a signature; then the server drains.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use skylight_client::chain::{ChainClient, ChainRpc, RpcAuth};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::activity::Activity;
use crate::api::NodeApi;
use crate::config::Config;
use crate::node::{self, Node, Settings};
use crate::server::revoked::RevokedDevices;
use crate::server::signed_requests::Verifier;
use crate::server::{self, ServerTls};
use crate::signer_link::authority::Authority;
use crate::signer_link::faults;
use crate::signer_link::service::{ShippedRequests, SignerLink};
use crate::signer_link::stage::Stage;
use crate::store::invoices::Invoices;
use crate::store::kv::postgres::{LEASE_LOST_EXIT, PgKv};
use crate::store::ldk_store::LdkStore;
use crate::store::outbox::Outbox;
use crate::store::payments::Payments;
use crate::store::signer_state::SignerState;

/// How long a stopping node-host keeps serving its signer while the Lightning node winds
/// down.
pub const NODE_STOP_GRACE: Duration = Duration::from_secs(8);

/// How long the Lightning node gets to finish once the signer link is closed.
const AFTER_CLOSE: Duration = Duration::from_secs(2);

/// A node-host with its stores open and its server's port bound, not yet serving.
pub struct NodeHost {
    config: Config,
    tls: ServerTls,
    listener: TcpListener,
    /// The plaintext health port's, when asked for.
    health_listener: Option<TcpListener>,
    uri: String,
    state: Arc<SignerState>,
    stage: Arc<Stage>,
    activity: Arc<Activity>,
    verifier: Arc<Verifier>,
    chain: Arc<ChainClient>,
    invoices: Arc<Invoices>,
    payments: Arc<Payments>,
    outbox: Arc<Outbox>,
    ldk_store: Arc<LdkStore>,
    /// The node's state in PostgreSQL, under the tenant's lease, when kept there.
    database: Option<Arc<PgKv>>,
    io: tokio::runtime::Handle,
}

impl NodeHost {
    /// Opens the node directory and its stores and binds the server's port. The server and
    /// the signer link run on `io`: LDK's threads block on the signer, and LDK's calls block
    /// on locks those threads hold, so what carries the signer's answers back must never
    /// wait behind them.
    pub fn start(config: Config, io: tokio::runtime::Handle) -> Result<Self> {
        let dir = config.dir();
        std::fs::create_dir_all(dir.root())
            .with_context(|| format!("cannot create {}", dir.root().display()))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.root(), std::fs::Permissions::from_mode(0o700))?;
        }
        // The lease first, before any state is read: one node never runs twice.
        let node_state = crate::store::kv::choose::open(&config)?;
        let tls = ServerTls {
            cert_chain_pem: read(&dir.server_cert())?,
            key_pem: read(&dir.server_key())?,
            tenant_ca_pem: read(&dir.tenant_ca())?,
        };
        let state = Arc::new(
            SignerState::open(node_state.kv.clone()).context("cannot open the signer state")?,
        );
        let listener = TcpListener::bind(config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        listener.set_nonblocking(true)?;
        let uri = format!("https://localhost:{}", listener.local_addr()?.port());
        let health_listener = match config.health_listen {
            Some(addr) => {
                let l = TcpListener::bind(addr)
                    .with_context(|| format!("cannot listen on {addr} (--health-listen)"))?;
                l.set_nonblocking(true)?;
                Some(l)
            }
            None => None,
        };
        let auth = match &config.bitcoind_cookie {
            Some(cookie) => RpcAuth::Cookie(cookie.clone()),
            None => RpcAuth::None,
        };
        let chain = Arc::new(ChainClient::connect(&ChainRpc::new(
            &config.bitcoind_rpc,
            config.network,
            auth,
        )?));
        let invoices = Arc::new(Invoices::open(node_state.kv.clone()));
        let payments = Arc::new(Payments::open(node_state.kv.clone()));
        let outbox =
            Arc::new(Outbox::open(node_state.kv.clone()).context("cannot open the outbox")?);
        Ok(NodeHost {
            verifier: Arc::new(Verifier::new(config.signed_request_window)),
            config,
            tls,
            listener,
            health_listener,
            uri,
            state,
            stage: Arc::new(Stage::new()),
            activity: Arc::new(Activity::default()),
            chain,
            invoices,
            payments,
            outbox,
            ldk_store: Arc::new(LdkStore::on(node_state.kv)),
            database: node_state.database,
            io,
        })
    }

    /// Serves until `shutdown` is cancelled (by the caller, by the idle watch, or by the
    /// Lightning node failing), then stops in order.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<()> {
        let tasks = TaskTracker::new();
        // Up first, NOT_SERVING until the node server serves.
        let health_stop = CancellationToken::new();
        let health = match self.health_listener.take() {
            Some(l) => Some(crate::server::health::serve(l, health_stop.clone()).await?),
            None => None,
        };
        if let Some(db) = &self.database {
            // Another node-host may run this node now: nothing more may be done or sent,
            // not even a goodbye to peers. Exiting at once is what a kill would do, and the
            // state is as its last durable write left it.
            let (lost, epoch) = (db.lost(), db.epoch());
            tokio::spawn(async move {
                lost.cancelled().await;
                tracing::error!(epoch, "the node's lease was lost: exiting at once");
                std::process::exit(LEASE_LOST_EXIT);
            });
        }
        let node = Node::new(node::Parts {
            id: self.config.node_id,
            network: self.config.network,
            invoices: self.invoices.clone(),
            payments: self.payments.clone(),
            outbox: self.outbox.clone(),
            stage: self.stage.clone(),
            signer_wait: self.config.signer_wait,
            ldk_runtime: tokio::runtime::Handle::current(),
        });
        // A chain of another network is refused before anything is served (the scheduler
        // sees node-host exit, and its log says why); one that is down is waited for.
        node::chain_health::check_network(&self.chain, &node).await?;
        tasks.spawn(node::chain_health::watch(
            self.chain.clone(),
            node.clone(),
            shutdown.clone(),
        ));
        // The events run beside the signer link, on the I/O runtime: `signer_needed` must
        // go out while LDK's threads wait for the very signer it calls for.
        {
            let (watcher, stop) = (node.clone(), shutdown.clone());
            let after = self.config.signer_needed_after;
            tasks.spawn_on(
                async move { watcher.raise_signer_needed(after, stop).await },
                &self.io,
            );
            let (watcher, stop) = (node.clone(), shutdown.clone());
            let blocks = self.config.stuck_after_blocks;
            tasks.spawn_on(
                async move { watcher.raise_stuck(blocks, stop).await },
                &self.io,
            );
        }
        // Events go to the scheduler until the very end: what the node raises while it
        // winds down is handed over too.
        let handover_stop = CancellationToken::new();
        let handover = match &self.config.events_socket {
            Some(socket) => {
                // Usage counts go the same way, best effort, until the same moment.
                tasks.spawn_on(
                    crate::usage::run(socket.clone(), handover_stop.clone()),
                    &self.io,
                );
                Some(tasks.spawn_on(
                    crate::handover::run(
                        self.outbox.clone(),
                        socket.clone(),
                        handover_stop.clone(),
                    ),
                    &self.io,
                ))
            }
            None => {
                tracing::info!("no --events-socket: events stay in the outbox");
                None
            }
        };
        if !self.config.idle_timeout.is_zero() {
            tasks.spawn(stop_when_idle(
                self.stage.clone(),
                self.activity.clone(),
                self.config.idle_timeout,
                shutdown.clone(),
            ));
        }

        let settings = Settings {
            chain: self.chain.clone(),
            p2p_listen: self.config.p2p_listen,
            p2p_announce: self.config.p2p_announce.clone(),
            signer_deadline: self.config.signer_deadline,
            chain_poll: self.config.chain_poll,
            store: self.ldk_store.clone(),
            io: self.io.clone(),
        };
        let node_done = CancellationToken::new();
        let lightning = {
            let (node, stop, done) = (node.clone(), shutdown.clone(), node_done.clone());
            tasks.spawn(async move {
                let result = node::run(settings, node, stop.clone()).await;
                done.cancel();
                if let Err(e) = &result {
                    tracing::error!(error = %format!("{e:#}"), "the Lightning node failed: stopping");
                    stop.cancel();
                }
                result
            })
        };

        // What ships with signing requests is chosen here, once: honestly the verifier's
        // calls in progress, or, for end-to-end tests, spoilt as a faults file says.
        let shipped = faults::chosen(self.verifier.clone() as Arc<dyn ShippedRequests>);
        let authority = Authority::new(self.config.node_id, self.state.clone())
            .context("cannot read the pinned state key")?;
        let link = SignerLink::new(self.stage.clone(), self.state.clone(), shipped, authority);
        let revoked = Arc::new(RevokedDevices::at(self.config.dir().revoked_devices()));
        let api = NodeApi::new(node, link).with_revoked(revoked);
        // Written whole, then renamed into place: the scheduler polls for this file.
        let uri_file = self.config.dir().grpc_uri();
        let tmp = uri_file.with_extension("tmp");
        std::fs::write(&tmp, format!("{}\n", self.uri))?;
        std::fs::rename(&tmp, &uri_file)?;
        tracing::info!(uri = %self.uri, "node-host serving");
        if let Some((h, _)) = &health {
            h.set(true).await;
        }

        let drained = {
            let (stage, stop) = (self.stage.clone(), shutdown.clone());
            let health = health.as_ref().map(|(h, _)| h.clone());
            async move {
                stop.cancelled().await;
                // Not ready from the first moment of the stop: no new client is sent here.
                if let Some(h) = health {
                    h.set(false).await;
                }
                // The signer stays reachable while the Lightning node winds down (it may be
                // finishing a commitment exchange); then the stage closes, which ends the
                // signers' streams (the server waits for open calls).
                let _ = tokio::time::timeout(NODE_STOP_GRACE, node_done.cancelled()).await;
                stage.close();
            }
        };
        let (listener, tls, activity, verifier) =
            (self.listener, self.tls, self.activity, self.verifier);
        let serving = tasks.spawn_on(
            async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                server::serve(listener, tls, api, activity, verifier, drained)
                    .await
                    .map_err(anyhow::Error::from)
            },
            &self.io,
        );
        let served = serving
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the node server crashed: {e}")));
        let _ = std::fs::remove_file(&uri_file);
        shutdown.cancel();
        health_stop.cancel();
        if let Some((_, served)) = health {
            let _ = served.await;
        }
        self.stage.close(); // Also when the server failed rather than stopped.
        // A signer call LDK cannot take a failure of (an HTLC's onion, with the signer
        // asleep) keeps its thread, and so the node, from stopping: then node-host exits
        // as a kill would, LDK's state on disk as it was, the events handed over first.
        // (A scheduler that is stopping may kill it before: the same.) Once the stage is
        // closed, a node that can stop does so at once: every signer call fails.
        let node_result = tokio::time::timeout(AFTER_CLOSE, lightning).await;
        handover_stop.cancel();
        if let Some(h) = handover {
            let _ = h.await;
        }
        let Ok(node_result) = node_result else {
            tracing::error!(
                "the Lightning node did not stop: a signer call it cannot do without is still waiting; exiting, to take it up at the next start"
            );
            std::process::exit(1);
        };
        tasks.close();
        tasks.wait().await;
        if let Some(db) = &self.database {
            // The next node-host need not wait the lease out.
            if let Err(e) = db.release() {
                tracing::warn!(error = %e, "the node's lease was not given up; it runs out by itself");
            }
        }
        served.context("node server failed")?;
        match node_result {
            Ok(r) => r?,
            Err(e) => anyhow::bail!("the Lightning node crashed: {e}"),
        }
        tracing::info!("node-host stopped");
        Ok(())
    }
}

/// Cancels `shutdown` after `idle` with no client call and no signer attached.
async fn stop_when_idle(
    stage: Arc<Stage>,
    activity: Arc<Activity>,
    idle: Duration,
    shutdown: CancellationToken,
) {
    let mut signers = stage.watch_signers();
    loop {
        // A signer attached is the node in use: the idle time counts from when it leaves.
        if signers.count() > 0 {
            if !signers.detached(&shutdown).await {
                return;
            }
            activity.touch();
            continue;
        }
        let left = idle.saturating_sub(activity.idle_for());
        if left.is_zero() {
            tracing::info!(idle_secs = idle.as_secs(), "idle: stopping");
            shutdown.cancel();
            return;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(left) => {}
            _ = signers.changed() => {}
        }
    }
}

fn read(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}
