//! The database's schema, in one place: every table Skylight keeps in PostgreSQL, as the
//! migrations that make it, applied in order at start and recorded in `skylight_schema`.
//!
//! A migration, once released, never changes: a new release adds the next one.

use tokio_postgres::Client;

use crate::Error;

/// The migrations, version 1 first: the schema at version N is the first N applied.
pub const MIGRATIONS: &[&str] = &[
    // 1: node state and leases.
    r#"
    -- Which node-host may write a tenant's node state: the holder of the current epoch,
    -- while the lease lasts (the database's clock decides). See lease.rs.
    CREATE TABLE node_lease (
        node_id    BYTEA PRIMARY KEY,
        epoch      BIGINT NOT NULL,
        owner      BYTEA NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    );
    -- A tenant's node state as LDK's store names it: (primary namespace, secondary
    -- namespace, key) -> value. Written only in a transaction that holds the lease. Names
    -- compare byte by byte ("C"), as LDK's other stores list them, whatever the locale.
    CREATE TABLE node_kv (
        node_id      BYTEA NOT NULL,
        primary_ns   TEXT COLLATE "C" NOT NULL,
        secondary_ns TEXT COLLATE "C" NOT NULL,
        key          TEXT COLLATE "C" NOT NULL,
        value        BYTEA NOT NULL,
        PRIMARY KEY (node_id, primary_ns, secondary_ns, key)
    );
    "#,
];

/// The schema version this release reads and writes.
pub fn version() -> i32 {
    MIGRATIONS.len() as i32
}

/// Any number, the same for every Skylight process: the advisory lock that lets one
/// process at a time migrate.
const MIGRATION_LOCK: i64 = 0x736b_796c_6967_6874; // "skylight"

/// Brings the database to [`version`], in one transaction that holds the migration lock
/// (so processes starting together migrate once); refuses a database a newer release
/// migrated. Returns the version found.
pub async fn migrate(client: &mut Client) -> Result<i32, Error> {
    let txn = client.transaction().await?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    txn.batch_execute(
        "CREATE TABLE IF NOT EXISTS skylight_schema (
             version    INT PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let found: i32 = txn
        .query_one("SELECT coalesce(max(version), 0) FROM skylight_schema", &[])
        .await?
        .get(0);
    if found > version() {
        return Err(Error::Schema(format!(
            "the database's schema is version {found}, newer than this release's {}: run the \
             release that migrated it, or a newer one",
            version()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let v = i as i32 + 1;
        txn.batch_execute(sql).await?;
        txn.execute("INSERT INTO skylight_schema (version) VALUES ($1)", &[&v])
            .await?;
        tracing::info!(version = v, "database schema migrated");
    }
    txn.commit().await?;
    Ok(found)
}
