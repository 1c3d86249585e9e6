//! One node-host per tenant, started on demand and supervised.
//!
//! `schedule` starts the tenant's node-host (or returns the running one) through the
//! [`launcher`] and waits until its gRPC answers. A supervisor task waits for it to end:
//! when it exits (idle, crash, kill -9) its URI is withdrawn at once, so no caller is
//! handed a dead node, and the next `schedule` starts it again. `info` with `wait`
//! long-polls until the node is scheduled.

mod database;
pub mod kube;
pub mod launcher;
pub mod local;
pub mod process;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skylight_certs::Authority;
use tokio::sync::watch;

use skylight_node_host::paths::NodeDir;

use crate::error::Error;
use crate::store::Store;
use launcher::{Launcher, Started};

/// A running node-host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeProcess {
    /// `https://localhost:<port>`.
    pub uri: String,
    /// Changes with every start: the start's time in unix milliseconds, made unique.
    pub session_id: u64,
    /// Its process, when it runs on this machine.
    pub pid: Option<u32>,
}

/// A running node-host, with what supervises it.
#[derive(Clone)]
struct Running {
    process: NodeProcess,
    handle: Arc<dyn Started>,
}

/// A session id for a start now: unix milliseconds, above every one given before.
fn next_session_id(last: &std::sync::atomic::AtomicU64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let previous = last
        .fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |l| Some(now.max(l + 1)),
        )
        .unwrap_or(0);
    now.max(previous + 1)
}

/// How node-hosts are started.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    /// The node-host binary.
    pub binary: PathBuf,
    /// Where each tenant's node directory lives (`<dir>/<node_id_hex>`).
    pub nodes_dir: PathBuf,
    /// Bitcoin network.
    pub network: bitcoin::Network,
    /// The chain's JSON-RPC and its credentials.
    pub chain: skylight_client::chain::ChainRpc,
    /// What the operator set for every node-host.
    pub node_host: crate::config::NodeHostSettings,
    /// Where node-hosts listen for Lightning peers.
    pub p2p: crate::config::P2pSettings,
    /// How long a start may take before it is given up.
    pub start_timeout: Duration,
    /// How long a stopping node-host gets before it is killed.
    pub stop_grace: Duration,
    /// Validity of node server certificates, days.
    pub cert_days: u64,
    /// Where node-hosts hand over their events.
    pub events_socket: PathBuf,
    /// Node-hosts running (or starting) at once, at most.
    pub max_running: usize,
}

struct Slot {
    running: watch::Sender<Option<Running>>,
    /// Unix seconds of the last Schedule (the operator's `tenant show`).
    last_scheduled: std::sync::atomic::AtomicU64,
    /// Serialises starts of one node.
    starting: Arc<tokio::sync::Mutex<()>>,
}

/// The node-hosts of every tenant.
pub struct NodeManager {
    settings: NodeSettings,
    store: Store,
    /// What runs node-hosts.
    launcher: Arc<dyn Launcher>,
    /// The last session id given.
    last_session: std::sync::atomic::AtomicU64,
    /// The users CA certificate, PEM: node server chains end with it.
    users_ca_pem: String,
    slots: Mutex<HashMap<[u8; 33], Arc<Slot>>>,
    /// Node-hosts started and not yet answering, by pid: one hands over the events its
    /// outbox kept from its last run as soon as it starts.
    starting: Mutex<HashMap<u32, [u8; 33]>>,
    /// Node-hosts running or starting: a place is taken before a start and given back
    /// when the process is gone (or the start failed).
    places: Arc<std::sync::atomic::AtomicUsize>,
}

/// One place among the running node-hosts, given back when dropped.
struct Place(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl NodeManager {
    /// A manager with nothing running, starting node-hosts as local processes.
    pub fn new(settings: NodeSettings, store: Store, users_ca: &Authority) -> Self {
        Self::with_launcher(settings, store, users_ca, Arc::new(local::LocalLauncher))
    }

    /// A manager with nothing running, starting node-hosts with `launcher`.
    pub fn with_launcher(
        settings: NodeSettings,
        store: Store,
        users_ca: &Authority,
        launcher: Arc<dyn Launcher>,
    ) -> Self {
        NodeManager {
            settings,
            store,
            launcher,
            last_session: Default::default(),
            users_ca_pem: users_ca.cert_pem().to_string(),
            slots: Mutex::new(HashMap::new()),
            starting: Mutex::default(),
            places: Arc::default(),
        }
    }

    /// Takes a place for one more node-host, or says the scheduler runs as many as it may.
    fn take_place(&self) -> Result<Place, Error> {
        let max = self.settings.max_running;
        let taken = self.places.fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| (n < max).then_some(n + 1),
        );
        match taken {
            Ok(_) => Ok(Place(self.places.clone())),
            Err(_) => {
                crate::metrics::refused("running_nodes");
                Err(Error::ResourceExhausted(format!(
                    "this scheduler runs as many nodes as its operator allows ({max}); idle \
                     ones stop by themselves, so try again in a few minutes"
                )))
            }
        }
    }

    fn slot(&self, node_id: &[u8; 33]) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(*node_id)
            .or_insert_with(|| {
                Arc::new(Slot {
                    running: watch::channel(None).0,
                    last_scheduled: Default::default(),
                    starting: Arc::default(),
                })
            })
            .clone()
    }

    /// Starts the tenant's node-host if it is not running; returns where it listens.
    pub async fn schedule(&self, node_id: &[u8; 33]) -> Result<NodeProcess, Error> {
        let started = std::time::Instant::now();
        let (running, cold) = self.schedule_timed(node_id).await?;
        crate::metrics::scheduled(started.elapsed(), cold);
        Ok(running)
    }

    /// [`NodeManager::schedule`], and whether it had to start the node-host.
    async fn schedule_timed(&self, node_id: &[u8; 33]) -> Result<(NodeProcess, bool), Error> {
        let slot = self.slot(node_id);
        slot.last_scheduled
            .store(crate::store::now(), std::sync::atomic::Ordering::Relaxed);
        let _one_start_at_a_time = slot.starting.lock().await;
        // Under the start lock, which an export takes to stop the node: once its record is
        // stored, no start gets past here.
        self.refuse_exported(node_id).await?;
        if let Some(r) = slot.running.borrow().clone()
            && r.handle.alive()
        {
            return Ok((r.process, false));
        }
        let place = self.take_place()?;
        let handle = self.launcher.start(self, node_id).await?;
        let running = Running {
            process: NodeProcess {
                uri: handle.uri().to_string(),
                session_id: next_session_id(&self.last_session),
                pid: handle.pid(),
            },
            handle,
        };
        let process = running.process.clone();
        slot.running.send_replace(Some(running.clone()));
        tracing::info!(node_id = %hex::encode(node_id), pid = ?process.pid, uri = %process.uri, "node-host started");

        // Supervise: withdraw the URI the moment the node-host is gone.
        let supervised = slot.clone();
        let node_hex = hex::encode(node_id);
        tokio::spawn(async move {
            let ended = running.handle.exited().await;
            drop(place);
            let session = running.process.session_id;
            supervised.running.send_if_modified(|cur| {
                if cur
                    .as_ref()
                    .is_some_and(|r| r.process.session_id == session)
                {
                    *cur = None;
                    true
                } else {
                    false
                }
            });
            match ended {
                Ok(()) => tracing::info!(node_id = %node_hex, "node-host stopped"),
                Err(how) => tracing::warn!(node_id = %node_hex, status = %how, "node-host exited"),
            }
        });
        Ok((process, true))
    }

    /// FAILED_PRECONDITION if the tenant's node is exported or being exported.
    pub async fn refuse_exported(&self, node_id: &[u8; 33]) -> Result<(), Error> {
        let (store, id) = (self.store.clone(), *node_id);
        let export = crate::state::blocking(move || store.export(&id)).await?;
        match export.map(|r| r.state) {
            None => Ok(()),
            Some(crate::store::records::ExportState::Exporting) => Err(Error::FailedPrecondition(
                "this node is being exported, and an exported node never runs here again (it \
                 would run twice); call ExportNode for its download URL"
                    .into(),
            )),
            Some(crate::store::records::ExportState::Exported) => Err(Error::FailedPrecondition(
                "this node was exported, and an exported node never runs here again (it would \
                 run twice); ExportNode gives its download URL, and the README's \"Leaving \
                 Skylight\" says how to run it yourself"
                    .into(),
            )),
        }
    }

    /// Stops the tenant's node-host for good, once its export is stored (which every start
    /// checks under the same lock); returns when the process is gone.
    pub async fn stop_exported(&self, node_id: &[u8; 33]) -> Result<(), Error> {
        self.stop(node_id).await.map(|_| ()).map_err(|_| {
            Error::Unavailable("the node did not stop for its export; call ExportNode again".into())
        })
    }

    /// When the tenant's last Schedule was (unix seconds), since this scheduler started.
    pub fn last_scheduled(&self, node_id: &[u8; 33]) -> Option<u64> {
        let at = self
            .slot(node_id)
            .last_scheduled
            .load(std::sync::atomic::Ordering::Relaxed);
        (at > 0).then_some(at)
    }

    /// Stops the tenant's node-host (SIGTERM: it stores its state and says goodbye to its
    /// peers), no start getting in meanwhile; whether one was running. The next Schedule
    /// starts it again.
    pub async fn stop(&self, node_id: &[u8; 33]) -> Result<bool, Error> {
        let slot = self.slot(node_id);
        let _no_start_meanwhile = slot.starting.lock().await;
        let running = slot.running.borrow().clone();
        let was_running = running.as_ref().is_some_and(|r| r.handle.alive());
        if let Some(r) = running {
            if was_running {
                // node-host says goodbye to its peers and stores its state first.
                r.handle.stop(self.settings.stop_grace).await;
            }
            // The supervisor withdraws the URI once the node-host is gone.
            let session = r.process.session_id;
            let mut rx = slot.running.subscribe();
            let gone = tokio::time::timeout(
                self.settings.stop_grace + Duration::from_secs(5),
                rx.wait_for(|cur| cur.as_ref().is_none_or(|c| c.process.session_id != session)),
            )
            .await;
            if gone.is_err() || r.handle.alive() {
                return Err(Error::Unavailable(format!(
                    "the node-host at {} did not stop; try again",
                    r.process.uri
                )));
            }
        }
        Ok(was_running)
    }

    /// Where the tenant's node-host listens, if running; with `wait`, waits until it is.
    pub async fn info(&self, node_id: &[u8; 33], wait: bool) -> Option<NodeProcess> {
        let mut rx = self.slot(node_id).running.subscribe();
        if !wait {
            return rx.borrow().as_ref().map(|r| r.process.clone());
        }
        rx.wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|r| r.as_ref().map(|r| r.process.clone()))
    }

    /// The tenant's node-host as its supervisor knows it, and whether it is alive now.
    pub fn show(&self, node_id: &[u8; 33]) -> Option<(NodeProcess, bool)> {
        let slot = self.slot(node_id);
        let running = slot.running.borrow();
        running
            .as_ref()
            .map(|r| (r.process.clone(), r.handle.alive()))
    }

    /// The tenant whose running node-host is process `pid`, if any: how the events socket
    /// knows who is calling.
    pub fn tenant_of_pid(&self, pid: u32) -> Option<[u8; 33]> {
        if let Some(id) = self
            .starting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&pid)
        {
            return Some(*id);
        }
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.iter().find_map(|(id, s)| {
            s.running
                .borrow()
                .as_ref()
                .filter(|r| r.process.pid == Some(pid))
                .map(|_| *id)
        })
    }

    /// How many node-hosts are running.
    pub fn running(&self) -> usize {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .values()
            .filter(|s| s.running.borrow().is_some())
            .count()
    }

    /// Stops every node-host this scheduler started.
    pub async fn stop_all(&self) {
        let running: Vec<Running> = {
            let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots
                .values()
                .filter_map(|s| s.running.borrow().clone())
                .collect()
        };
        // All at once: stopping one after another would take a grace period each.
        let mut stopping = tokio::task::JoinSet::new();
        for r in running {
            let grace = self.settings.stop_grace;
            stopping.spawn(async move { r.handle.stop(grace).await });
        }
        while stopping.join_next().await.is_some() {}
    }

    /// The users CA certificate, PEM (what node server chains end with).
    pub fn users_ca_pem(&self) -> &str {
        &self.users_ca_pem
    }

    /// The node-state database (its URL file) and the lease time node-hosts use, when
    /// node state is kept in PostgreSQL.
    pub fn node_database(&self) -> Option<(std::path::PathBuf, Duration)> {
        let h = &self.settings.node_host;
        let ttl = h
            .lease_ttl
            .unwrap_or(skylight_node_host::config::DEFAULT_LEASE_TTL);
        h.state_database_url_file.clone().map(|f| (f, ttl))
    }

    /// The tenant's node directory.
    pub fn node_dir(&self, node_id: &[u8; 33]) -> NodeDir {
        NodeDir::new(self.settings.nodes_dir.join(hex::encode(node_id)))
    }
}
