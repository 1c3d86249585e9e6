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

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use lightning_signer::lightning::io;
use skylight_postgres::lease::{Lease, Refused};
use skylight_postgres::tokio_postgres::{self, Client, Statement};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Change, Durability, NodeKv, other};

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
                            let _ = ready.send(Ok(conn.lease.epoch));
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

struct Statements {
    read: Statement,
    upsert: Statement,
    delete: Statement,
    list: Statement,
    scan: Statement,
    list_all: Statement,
}

impl Statements {
    async fn prepare(client: &Client) -> Result<Self, tokio_postgres::Error> {
        Ok(Statements {
            read: client
                .prepare(
                    "SELECT value FROM node_kv WHERE node_id = $1 AND primary_ns = $2 \
                     AND secondary_ns = $3 AND key = $4",
                )
                .await?,
            upsert: client
                .prepare(
                    "INSERT INTO node_kv (node_id, primary_ns, secondary_ns, key, value) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (node_id, primary_ns, secondary_ns, key) \
                     DO UPDATE SET value = excluded.value",
                )
                .await?,
            delete: client
                .prepare(
                    "DELETE FROM node_kv WHERE node_id = $1 AND primary_ns = $2 \
                     AND secondary_ns = $3 AND key = $4",
                )
                .await?,
            list: client
                .prepare(
                    "SELECT key FROM node_kv WHERE node_id = $1 AND primary_ns = $2 \
                     AND secondary_ns = $3 ORDER BY key",
                )
                .await?,
            scan: client
                .prepare(
                    "SELECT key, value FROM node_kv WHERE node_id = $1 AND primary_ns = $2 \
                     AND secondary_ns = $3 ORDER BY key",
                )
                .await?,
            list_all: client
                .prepare(
                    "SELECT primary_ns, secondary_ns, key FROM node_kv WHERE node_id = $1 \
                     ORDER BY primary_ns, secondary_ns, key",
                )
                .await?,
        })
    }
}

/// The connection thread's state.
struct Conn {
    config: tokio_postgres::Config,
    client: Client,
    statements: Statements,
    node_id: Vec<u8>,
    lease: Lease,
    settings: LeaseSettings,
    /// When the last renewal that succeeded was sent: the lease lasts at least its ttl
    /// from then.
    renewed: Instant,
    /// Why no call is served any more (lease lost or given up).
    gone: Option<String>,
}

async fn connect(
    config: &tokio_postgres::Config,
) -> anyhow::Result<(Client, Statements), anyhow::Error> {
    let client = skylight_postgres::connect(config).await?;
    let statements = Statements::prepare(&client)
        .await
        .context("cannot prepare the node state's statements")?;
    Ok((client, statements))
}

impl Conn {
    async fn open(
        config: tokio_postgres::Config,
        node_id: [u8; 33],
        settings: LeaseSettings,
    ) -> anyhow::Result<Conn> {
        let mut client = skylight_postgres::connect(&config).await?;
        skylight_postgres::schema::migrate(&mut client).await?;
        let statements = Statements::prepare(&client).await?;
        let owner = owner_id()?;
        let started = Instant::now();
        let lease = loop {
            let sent = Instant::now();
            match Lease::acquire(&client, &node_id, owner.clone(), settings.ttl).await {
                Ok(lease) => break (lease, sent),
                Err(Refused::Db(e)) => return Err(e.into()),
                Err(Refused::Held(left)) => {
                    if started.elapsed() + left > settings.wait() {
                        anyhow::bail!(
                            "another node-host holds this node's lease for {} s more: the node \
                             is running elsewhere (one node must never run twice)",
                            left.as_secs().max(1)
                        );
                    }
                    tracing::info!(
                        left_ms = left.as_millis() as u64,
                        "waiting for the previous node-host's lease to run out"
                    );
                    tokio::time::sleep(left.min(Duration::from_secs(1)) + Duration::from_millis(50))
                        .await;
                }
            }
        };
        let (lease, renewed) = lease;
        Ok(Conn {
            config,
            client,
            statements,
            node_id: node_id.to_vec(),
            lease,
            settings,
            renewed,
            gone: None,
        })
    }

    async fn serve(mut self, mut jobs: mpsc::UnboundedReceiver<Job>, lost: CancellationToken) {
        let mut tick = tokio::time::interval(self.settings.ttl / 10);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = tick.tick(), if self.gone.is_none() => self.keep(&lost).await,
                job = jobs.recv() => match job {
                    Some(job) => self.handle(job, &lost).await,
                    None => {
                        // Everyone let go: a clean stop.
                        if self.gone.is_none() {
                            self.release().await;
                        }
                        return;
                    }
                },
            }
        }
    }

    fn stale(&self) -> bool {
        self.renewed.elapsed() >= self.settings.stale_after()
    }

    fn lose(&mut self, why: &str, lost: &CancellationToken) -> io::Error {
        if self.gone.is_none() {
            tracing::error!(epoch = self.lease.epoch, why, "the node's lease is lost: stopping");
            self.gone = Some(format!("the node's lease is lost ({why})"));
            lost.cancel();
        }
        self.refused()
    }

    fn refused(&self) -> io::Error {
        other(self.gone.as_deref().unwrap_or("the node state is closed"))
    }

    /// Renews the lease when a third of it has passed.
    async fn keep(&mut self, lost: &CancellationToken) {
        if self.stale() {
            self.lose("not renewed in time", lost);
            return;
        }
        if self.renewed.elapsed() < self.settings.renew_after() {
            return;
        }
        let sent = Instant::now();
        match self.lease.renew(&self.client).await {
            Ok(true) => self.renewed = sent,
            Ok(false) => {
                self.lose("taken over, or run out", lost);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew the node's lease; trying again");
                self.reconnect_if_closed().await;
            }
        }
    }

    async fn reconnect_if_closed(&mut self) {
        if !self.client.is_closed() {
            return;
        }
        match connect(&self.config).await {
            Ok((client, statements)) => {
                self.client = client;
                self.statements = statements;
                tracing::info!("reconnected to the node state's database");
            }
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot reconnect to the node state's database"),
        }
    }

    async fn handle(&mut self, job: Job, lost: &CancellationToken) {
        match job {
            Job::Read(key, reply) => {
                let _ = reply.send(self.read(&key).await);
            }
            Job::Commit(changes, durability, reply) => {
                let _ = reply.send(self.commit(&changes, durability, lost).await);
            }
            Job::List(primary, secondary, reply) => {
                let _ = reply.send(self.list(&primary, &secondary).await);
            }
            Job::ListAll(reply) => {
                let _ = reply.send(self.list_all().await);
            }
            Job::Scan(primary, secondary, reply) => {
                let _ = reply.send(self.scan(&primary, &secondary).await);
            }
            Job::Release(reply) => {
                if self.gone.is_none() {
                    self.release().await;
                }
                let _ = reply.send(Ok(()));
            }
        }
    }

    async fn release(&mut self) {
        if let Err(e) = self.lease.release(&self.client).await {
            tracing::warn!(error = %e, "cannot give the node's lease up; it runs out by itself");
        }
        self.gone = Some("the node's lease was given up (node-host is stopping)".into());
    }

    async fn read(&mut self, key: &Key) -> io::Result<Option<Vec<u8>>> {
        loop {
            if self.gone.is_some() {
                return Err(self.refused());
            }
            let row = self
                .client
                .query_opt(
                    &self.statements.read,
                    &[&self.node_id, &key.primary, &key.secondary, &key.key],
                )
                .await;
            match row {
                Ok(row) => return Ok(row.map(|r| r.get(0))),
                Err(e) => self.after_failure(e).await?,
            }
        }
    }

    async fn list(&mut self, primary: &str, secondary: &str) -> io::Result<Vec<String>> {
        loop {
            if self.gone.is_some() {
                return Err(self.refused());
            }
            let rows = self
                .client
                .query(&self.statements.list, &[&self.node_id, &primary, &secondary])
                .await;
            match rows {
                Ok(rows) => return Ok(rows.iter().map(|r| r.get(0)).collect()),
                Err(e) => self.after_failure(e).await?,
            }
        }
    }

    async fn scan(&mut self, primary: &str, secondary: &str) -> io::Result<Vec<(String, Vec<u8>)>> {
        loop {
            if self.gone.is_some() {
                return Err(self.refused());
            }
            let rows = self
                .client
                .query(&self.statements.scan, &[&self.node_id, &primary, &secondary])
                .await;
            match rows {
                Ok(rows) => return Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect()),
                Err(e) => self.after_failure(e).await?,
            }
        }
    }

    async fn list_all(&mut self) -> io::Result<Vec<(String, String, String)>> {
        loop {
            if self.gone.is_some() {
                return Err(self.refused());
            }
            let rows = self
                .client
                .query(&self.statements.list_all, &[&self.node_id])
                .await;
            match rows {
                Ok(rows) => {
                    return Ok(rows
                        .iter()
                        .map(|r| (r.get(0), r.get(1), r.get(2)))
                        .collect());
                }
                Err(e) => self.after_failure(e).await?,
            }
        }
    }

    /// Commits `changes` (a value to set, or none to remove the key) in a transaction
    /// that renews the lease first, trying again after a lost connection while the lease
    /// holds.
    async fn commit(
        &mut self,
        changes: &[Change],
        durability: Durability,
        lost: &CancellationToken,
    ) -> io::Result<()> {
        loop {
            if self.gone.is_some() {
                return Err(self.refused());
            }
            if self.stale() {
                return Err(self.lose("not renewed in time", lost));
            }
            let sent = Instant::now();
            match self.try_commit(changes, durability).await {
                Ok(true) => {
                    self.renewed = sent;
                    return Ok(());
                }
                Ok(false) => return Err(self.lose("taken over, or run out", lost)),
                // A commit lost with the connection may or may not have happened: doing
                // it again sets the same values, and nothing else was written in between
                // (this thread writes one thing at a time).
                Err(e) => self.after_failure(e).await?,
            }
        }
    }

    /// One transaction: the fence, then the changes; false (rolled back) if the lease is
    /// no longer this holder's.
    async fn try_commit(
        &mut self,
        changes: &[Change],
        durability: Durability,
    ) -> Result<bool, tokio_postgres::Error> {
        let txn = self.client.transaction().await?;
        if durability == Durability::Eventual {
            // Committed without waiting for the log's flush: a crash of the database may
            // lose the last few such commits, never a part of one, and never one made
            // after them durably.
            txn.batch_execute("SET LOCAL synchronous_commit = off")
                .await?;
        }
        let (statements, node_id, lease) = (&self.statements, &self.node_id, &self.lease);
        let held = match changes {
            // One change (LDK's every write) goes with the fence in one round trip: if the
            // fence fails, the change is rolled back with it, unseen.
            [change] => {
                let (held, changed) = tokio::join!(
                    lease.renew(&txn),
                    apply(&txn, statements, node_id, change)
                );
                changed?;
                held?
            }
            _ => {
                let held = lease.renew(&txn).await?;
                if held {
                    for change in changes {
                        apply(&txn, statements, node_id, change).await?;
                    }
                }
                held
            }
        };
        if !held {
            txn.rollback().await?;
            return Ok(false);
        }
        txn.commit().await?;
        Ok(true)
    }

    /// After a failed call: a lost connection is made again (the caller tries again while
    /// the lease holds); any other failure is the caller's error.
    async fn after_failure(&mut self, e: tokio_postgres::Error) -> io::Result<()> {
        if !self.client.is_closed() {
            return Err(other(e));
        }
        tracing::warn!(error = %e, "the node state's connection was lost; reconnecting");
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.reconnect_if_closed().await;
        if self.stale() {
            return Err(other(format!("{e}, and the lease ran out meanwhile")));
        }
        Ok(())
    }
}

/// Sets (or with no value removes) one key, inside `txn`.
async fn apply(
    txn: &tokio_postgres::Transaction<'_>,
    statements: &Statements,
    node_id: &Vec<u8>,
    c: &Change,
) -> Result<u64, tokio_postgres::Error> {
    match &c.value {
        Some(v) => {
            txn.execute(
                &statements.upsert,
                &[node_id, &c.primary, &c.secondary, &c.key, v],
            )
            .await
        }
        None => {
            txn.execute(
                &statements.delete,
                &[node_id, &c.primary, &c.secondary, &c.key],
            )
            .await
        }
    }
}

/// A random owner id for this process's lease.
fn owner_id() -> anyhow::Result<Vec<u8>> {
    let mut id = vec![0u8; 16];
    getrandom::getrandom(&mut id).context("no randomness")?;
    Ok(id)
}

#[cfg(test)]
mod tests;
