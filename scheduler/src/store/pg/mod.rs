//! The scheduler's state in PostgreSQL, shared by every replica on one database.
//!
//! The tables (migration 2 of `skylight_postgres::schema`) mirror the embedded database's:
//! the same JSON records, keyed by columns. Every write is one SERIALIZABLE transaction, so
//! what the embedded database gets from serialised writers holds across replicas too: an
//! invite code redeems once, the tenant cap is counted inside the registration, a port is
//! given to one tenant. A transaction PostgreSQL aborts as a serialization conflict is run
//! again from the start; nothing it did is kept.
//!
//! The store's methods block (the trait is the embedded database's, called from
//! `spawn_blocking`): each one runs on the store's own runtime thread, which also drives the
//! connections, and the caller waits for its answer. That never nests a runtime in the
//! caller's, whichever thread calls.

mod exports;
mod ports;
mod tenants;
mod webhooks;

use std::future::Future;
use std::time::Duration;

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use skylight_postgres::DbConfig;
use skylight_postgres::tokio_postgres::error::SqlState;
use skylight_postgres::tokio_postgres::{self, Client, IsolationLevel, Transaction};

use super::OpenError;
use crate::error::Error;

/// Connections a scheduler keeps open: its store calls are short, and a few in parallel
/// cover its spawn_blocking callers without crowding the database's connection limit when
/// several replicas share it.
const POOL_SIZE: usize = 8;

/// How long a call waits for a free connection (or a new one) before it is refused.
const CONNECTION_WAIT: Duration = Duration::from_secs(10);

/// How many times a transaction is run when PostgreSQL keeps aborting it as a conflict.
const ATTEMPTS: u32 = 20;

/// Opens connections for the pool.
struct Connector(DbConfig);

impl managed::Manager for Connector {
    type Type = Client;
    type Error = skylight_postgres::Error;

    async fn create(&self) -> Result<Client, Self::Error> {
        skylight_postgres::connect(&self.0).await
    }

    async fn recycle(&self, client: &mut Client, _: &Metrics) -> RecycleResult<Self::Error> {
        if client.is_closed() {
            return Err(RecycleError::message("the connection was closed"));
        }
        Ok(())
    }
}

type Pool = managed::Pool<Connector>;

/// Why a transaction did not commit: the database's error (a conflict is run again) or
/// the store's answer (a tenant not registered, a code used), which ends it as it is.
pub(crate) enum Fail {
    Db(tokio_postgres::Error),
    App(Error),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        Fail::Db(e)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::App(e)
    }
}

/// The store's result type inside a transaction.
pub(crate) type Tx<T> = Result<T, Fail>;

/// The scheduler's state in PostgreSQL.
pub struct PgStore {
    pool: Pool,
    runtime: tokio::runtime::Handle,
    /// Dropped with the store: ends the runtime's thread.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl PgStore {
    /// Connects to `config`'s database, brings its schema to this release's version and
    /// checks (or, the first time, sets) the network it serves, as the embedded database
    /// does: tenants and their keys belong to one chain.
    pub fn open(config: DbConfig, network: Option<&str>) -> Result<PgStore, OpenError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("scheduler-pg")
            .enable_all()
            .build()
            .map_err(|e| OpenError::Other(format!("cannot start its runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // The runtime lives on its own thread and is dropped there, never inside a caller's
        // async context (which tokio refuses).
        std::thread::Builder::new()
            .name("scheduler-pg".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                })
            })
            .map_err(|e| OpenError::Other(format!("cannot start its thread: {e}")))?;
        let pool = {
            let _entered = handle.enter();
            Pool::builder(Connector(config))
                .max_size(POOL_SIZE)
                .wait_timeout(Some(CONNECTION_WAIT))
                .create_timeout(Some(CONNECTION_WAIT))
                .runtime(deadpool::Runtime::Tokio1)
                .build()
                .map_err(|e| OpenError::Other(e.to_string()))?
        };
        let store = PgStore {
            pool,
            runtime: handle,
            _stop: stop,
        };
        store
            .block(async {
                let mut client = store.pool.get().await.map_err(pool_error)?;
                skylight_postgres::schema::migrate(&mut client)
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))?;
                check_network(&mut client, network).await
            })
            .map_err(|e| match e {
                Error::FailedPrecondition(m) => OpenError::WrongNetwork(m),
                other => OpenError::Other(other.to_string()),
            })?;
        Ok(store)
    }

    /// Waits for `work` on the calling thread, with the store's runtime entered (its
    /// worker drives the connections and timers). Unlike the runtime's own `block_on` this
    /// may be called from anywhere, an async task included, as the embedded database's
    /// calls may: it then blocks that thread as they do.
    fn block<T>(&self, work: impl Future<Output = T>) -> T {
        let _entered = self.runtime.enter();
        futures_executor::block_on(work)
    }

    /// Runs `attempt` in a transaction of `isolation`, again from the start while
    /// PostgreSQL aborts it as a conflict; commits what the attempt returns `Ok` for.
    fn transaction<T>(
        &self,
        isolation: IsolationLevel,
        attempt: impl AsyncFn(&Transaction<'_>) -> Tx<T>,
    ) -> Result<T, Error> {
        self.block(async {
            let mut tries = 0;
            loop {
                tries += 1;
                let mut conn = self.pool.get().await.map_err(pool_error)?;
                let result = async {
                    let txn = conn
                        .build_transaction()
                        .isolation_level(isolation)
                        .start()
                        .await?;
                    let value = attempt(&txn).await?;
                    txn.commit().await?;
                    Ok::<T, Fail>(value)
                }
                .await;
                match result {
                    Ok(value) => return Ok(value),
                    Err(Fail::App(e)) => return Err(e),
                    Err(Fail::Db(e)) if is_conflict(&e) && tries < ATTEMPTS => {
                        // Conflicting writers retry at different moments.
                        let mut b = [0u8; 1];
                        let _ = getrandom::getrandom(&mut b);
                        let jitter = u64::from(b[0]) % (5 * u64::from(tries));
                        tokio::time::sleep(Duration::from_millis(jitter)).await;
                    }
                    Err(Fail::Db(e)) => return Err(db_error(e)),
                }
            }
        })
    }

    /// A write (or a read that must see one consistent state), SERIALIZABLE.
    fn write<T>(&self, attempt: impl AsyncFn(&Transaction<'_>) -> Tx<T>) -> Result<T, Error> {
        self.transaction(IsolationLevel::Serializable, attempt)
    }

    /// A read of several statements from one snapshot.
    fn read<T>(&self, attempt: impl AsyncFn(&Transaction<'_>) -> Tx<T>) -> Result<T, Error> {
        self.transaction(IsolationLevel::RepeatableRead, attempt)
    }
}

impl super::Deployment for PgStore {
    fn share_once(&self, key: &str, value: &str) -> Result<String, Error> {
        self.write(async |txn| {
            txn.execute(
                "INSERT INTO scheduler_meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&key, &value],
            )
            .await?;
            let row = txn
                .query_one("SELECT value FROM scheduler_meta WHERE key = $1", &[&key])
                .await?;
            Ok(row.get(0))
        })
    }
}

/// Whether PostgreSQL aborted the transaction only because a concurrent one won.
fn is_conflict(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE) | Some(&SqlState::T_R_DEADLOCK_DETECTED)
    )
}

fn db_error(e: tokio_postgres::Error) -> Error {
    if e.is_closed() || e.code().is_none() {
        tracing::warn!(error = %e, "the scheduler's database");
        return Error::Unavailable(
            "the scheduler's database cannot be reached; try again in a few seconds".into(),
        );
    }
    Error::Internal(format!("storage: {e}"))
}

fn pool_error(e: managed::PoolError<skylight_postgres::Error>) -> Error {
    tracing::warn!(error = %e, "no connection to the scheduler's database");
    Error::Unavailable(
        "the scheduler's database cannot be reached; try again in a few seconds".into(),
    )
}

/// Checks the network the database serves, or sets it the first time.
async fn check_network(client: &mut Client, network: Option<&str>) -> Result<(), Error> {
    let Some(network) = network else {
        return Ok(());
    };
    let txn = client.transaction().await.map_err(db_error)?;
    txn.execute(
        "INSERT INTO scheduler_meta (key, value) VALUES ('network', $1) ON CONFLICT DO NOTHING",
        &[&network],
    )
    .await
    .map_err(db_error)?;
    let stored: String = txn
        .query_one(
            "SELECT value FROM scheduler_meta WHERE key = 'network'",
            &[],
        )
        .await
        .map_err(db_error)?
        .get(0);
    txn.commit().await.map_err(db_error)?;
    if stored != network {
        return Err(Error::FailedPrecondition(format!(
            "this database serves {stored}, not {network}; use another database"
        )));
    }
    Ok(())
}

/// A u64 the store keeps (ids, unix times) as PostgreSQL's BIGINT.
pub(crate) fn big(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

/// A BIGINT back as the u64 it was stored from.
pub(crate) fn small(v: i64) -> u64 {
    v.max(0) as u64
}

#[cfg(test)]
mod tests;
