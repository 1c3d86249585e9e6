//! The connection thread of [`super::PgKv`]: one connection, every call in the order it
//! was made, the lease renewed with each write and between writes, a lost connection
//! made again while the lease holds.

use std::time::{Duration, Instant};

use anyhow::Context;
use lightning_signer::lightning::io;
use skylight_postgres::lease::{Lease, Refused};
use skylight_postgres::tokio_postgres::{self, Client, Statement};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Job, Key, LeaseSettings};
use crate::store::kv::{Change, Durability, other};

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
pub(super) struct Conn {
    config: skylight_postgres::DbConfig,
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
    config: &skylight_postgres::DbConfig,
) -> anyhow::Result<(Client, Statements), anyhow::Error> {
    let client = skylight_postgres::connect(config).await?;
    let statements = Statements::prepare(&client)
        .await
        .context("cannot prepare the node state's statements")?;
    Ok((client, statements))
}

impl Conn {
    /// The lease's epoch.
    pub(super) fn epoch(&self) -> i64 {
        self.lease.epoch
    }

    pub(super) async fn open(
        config: skylight_postgres::DbConfig,
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

    pub(super) async fn serve(mut self, mut jobs: mpsc::UnboundedReceiver<Job>, lost: CancellationToken) {
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

    /// The rows a read (the statement `pick` chooses, with `params`) returns, read again
    /// after a lost connection while the lease holds.
    async fn rows(
        &mut self,
        pick: fn(&Statements) -> &Statement,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> io::Result<Vec<tokio_postgres::Row>> {
        loop {
            if self.gone.is_some() {
                return Err(self.refused());
            }
            let statement = pick(&self.statements).clone();
            match self.client.query(&statement, params).await {
                Ok(rows) => return Ok(rows),
                Err(e) => self.after_failure(e).await?,
            }
        }
    }

    async fn read(&mut self, key: &Key) -> io::Result<Option<Vec<u8>>> {
        let node = self.node_id.clone();
        let rows = self
            .rows(|s| &s.read, &[&node, &key.primary, &key.secondary, &key.key])
            .await?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    async fn list(&mut self, primary: &str, secondary: &str) -> io::Result<Vec<String>> {
        let node = self.node_id.clone();
        let rows = self.rows(|s| &s.list, &[&node, &primary, &secondary]).await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn scan(&mut self, primary: &str, secondary: &str) -> io::Result<Vec<(String, Vec<u8>)>> {
        let node = self.node_id.clone();
        let rows = self.rows(|s| &s.scan, &[&node, &primary, &secondary]).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn list_all(&mut self) -> io::Result<Vec<(String, String, String)>> {
        let node = self.node_id.clone();
        let rows = self.rows(|s| &s.list_all, &[&node]).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
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
            // A database that stops answering mid-commit (a half-open connection) must not
            // keep this node-host going past its lease: given up at the stale deadline.
            let deadline = self.renewed + self.settings.stale_after();
            let attempt =
                tokio::time::timeout_at(deadline.into(), self.try_commit(changes, durability))
                    .await;
            let Ok(attempt) = attempt else {
                return Err(self.lose("the database did not answer within the lease", lost));
            };
            match attempt {
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
        // The fence strictly first: the lease row is locked before any state row, in every
        // holder's transactions, so a takeover and a write never wait on each other in a
        // cycle.
        let held = lease.renew(&txn).await?;
        if held {
            for change in changes {
                apply(&txn, statements, node_id, change).await?;
            }
        }
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

