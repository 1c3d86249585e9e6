//! A node's state in PostgreSQL (`node_kv`, see `skylight_postgres::schema`), so the node can
//! run on any machine that reaches the database; every write fenced by the tenant's lease.
//!
//! One thread owns the connection and does every call in the order it is made (LDK needs
//! writes to a key applied in order). It takes the tenant's lease before anything is read,
//! renews it in the same transaction as every write and, between writes, on its own; a
//! write the lease no longer covers changes nothing. When the lease is lost (taken over,
//! or not renewed for two thirds of its time, e.g. after node-host was stopped) every call
//! fails from then on and [`PgKv::lost`] is cancelled: node-host exits with
//! [`LEASE_LOST_EXIT`] before any successor may start.

mod conn;

use std::time::Duration;

use anyhow::anyhow;
use lightning_signer::lightning::io;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Change, Durability, NodeKv, other};
use conn::Conn;

/// node-host's exit status when it lost its lease: another node-host may run the node now.
pub const LEASE_LOST_EXIT: i32 = 75;

/// How the lease is held.
#[derive(Debug, Clone, Copy)]
pub struct LeaseSettings {
    /// How long each renewal lasts: the time a crashed node-host keeps its successor
    /// waiting.
    pub ttl: Duration,
}

impl LeaseSettings {
    /// Renewed when a third of it has passed since the last renewal.
    fn renew_after(&self) -> Duration {
        self.ttl / 3
    }

    /// Given up when two thirds have passed without a renewal: before anyone else can
    /// take it.
    fn stale_after(&self) -> Duration {
        self.ttl * 2 / 3
    }

    /// How long a start waits for a predecessor's lease to run out (one that crashed
    /// without giving it up).
    fn wait(&self) -> Duration {
        self.ttl + Duration::from_secs(2)
    }
}

type Reply<T> = std::sync::mpsc::SyncSender<io::Result<T>>;

struct Key {
    primary: String,
    secondary: String,
    key: String,
}

impl Key {
    fn new(primary: &str, secondary: &str, key: &str) -> Self {
        Key {
            primary: primary.into(),
            secondary: secondary.into(),
            key: key.into(),
        }
    }
}

enum Job {
    Read(Key, Reply<Option<Vec<u8>>>),
    Commit(Vec<Change>, Durability, Reply<()>),
    List(String, String, Reply<Vec<String>>),
    Scan(String, String, Reply<Vec<(String, Vec<u8>)>>),
    ListAll(Reply<Vec<(String, String, String)>>),
    Release(Reply<()>),
}

/// A node's state in PostgreSQL, under the tenant's lease.
pub struct PgKv {
    jobs: mpsc::UnboundedSender<Job>,
    lost: CancellationToken,
    epoch: i64,
}

impl PgKv {
    /// Connects to the database at `url`, migrates its schema, and takes the tenant's lease
    /// (waiting for a predecessor's to run out).
    pub fn open(url: &str, node_id: [u8; 33], lease: LeaseSettings) -> anyhow::Result<PgKv> {
        let config = skylight_postgres::parse(url)?;
        let (jobs, rx) = mpsc::unbounded_channel();
        let lost = CancellationToken::new();
        let (ready, started) = std::sync::mpsc::sync_channel(1);
        let lost_by_thread = lost.clone();
        std::thread::Builder::new()
            .name("node-state".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready.send(Err(anyhow!(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match Conn::open(config, node_id, lease).await {
                        Ok(conn) => {
                            let _ = ready.send(Ok(conn.epoch()));
                            conn.serve(rx, lost_by_thread).await;
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                        }
                    }
                });
            })?;
        let epoch = started
            .recv()
            .map_err(|_| anyhow!("the node state's thread ended before it started"))??;
        tracing::info!(epoch, "node state in PostgreSQL, lease taken");
        Ok(PgKv { jobs, lost, epoch })
    }

    /// Cancelled when the lease is lost: node-host must stop at once.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// The lease's epoch: raised at every takeover.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Gives the lease up (a clean stop): nothing is written after.
    pub fn release(&self) -> io::Result<()> {
        self.call(Job::Release)
    }

    fn call<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> io::Result<T> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.jobs
            .send(job(reply))
            .map_err(|_| other("the node state's connection is closed"))?;
        answer
            .recv()
            .map_err(|_| other("the node state's connection is closed"))?
    }
}

impl NodeKv for PgKv {
    fn read(&self, primary: &str, secondary: &str, key: &str) -> io::Result<Option<Vec<u8>>> {
        self.call(|r| Job::Read(Key::new(primary, secondary, key), r))
    }

    fn commit(&self, changes: Vec<Change>, durability: Durability) -> io::Result<()> {
        self.call(|r| Job::Commit(changes, durability, r))
    }

    fn scan(&self, primary: &str, secondary: &str) -> io::Result<Vec<(String, Vec<u8>)>> {
        self.call(|r| Job::Scan(primary.into(), secondary.into(), r))
    }

    fn list(&self, primary: &str, secondary: &str) -> io::Result<Vec<String>> {
        self.call(|r| Job::List(primary.into(), secondary.into(), r))
    }

    fn list_all(&self) -> io::Result<Vec<(String, String, String)>> {
        self.call(Job::ListAll)
    }
}

#[cfg(test)]
mod tests;

