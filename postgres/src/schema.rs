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
    // 2: the scheduler's own state, shared by its replicas. Values are the same JSON
    // records as the embedded database's (see the scheduler's store/records.rs); keys are
    // columns, so what the scheduler looks up by is indexed and unique where it must be.
    r#"
    -- Facts of the whole deployment: the network, counters (last webhook id, last
    -- delivery number).
    CREATE TABLE scheduler_meta (
        key   TEXT COLLATE "C" PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE tenants (
        node_id BYTEA PRIMARY KEY,
        record  TEXT NOT NULL
    );
    -- Each tenant's CA (the record holds its private key).
    CREATE TABLE tenant_cas (
        node_id BYTEA PRIMARY KEY REFERENCES tenants,
        record  TEXT NOT NULL
    );
    CREATE TABLE devices (
        node_id BYTEA NOT NULL REFERENCES tenants,
        name    TEXT COLLATE "C" NOT NULL,
        record  TEXT NOT NULL,
        PRIMARY KEY (node_id, name)
    );
    -- Invite codes; `owner` is the tenant a code was given to share (none: the
    -- operator's).
    CREATE TABLE invites (
        code   TEXT COLLATE "C" PRIMARY KEY,
        owner  BYTEA,
        record TEXT NOT NULL
    );
    CREATE INDEX invites_by_owner ON invites (owner, code);
    CREATE TABLE signer_rejections (
        seq    BIGINT PRIMARY KEY,
        record TEXT NOT NULL
    );
    -- A tenant with a row here is never started again.
    CREATE TABLE exports (
        node_id BYTEA PRIMARY KEY REFERENCES tenants,
        record  TEXT NOT NULL
    );
    CREATE TABLE p2p_ports (
        node_id BYTEA PRIMARY KEY,
        port    INT NOT NULL UNIQUE
    );
    CREATE TABLE webhooks (
        id      BIGINT PRIMARY KEY,
        node_id BYTEA NOT NULL,
        record  TEXT NOT NULL
    );
    CREATE INDEX webhooks_by_tenant ON webhooks (node_id, id);
    CREATE TABLE webhook_events (
        node_id  BYTEA NOT NULL,
        event_id TEXT COLLATE "C" NOT NULL,
        record   TEXT NOT NULL,
        PRIMARY KEY (node_id, event_id)
    );
    -- Deliveries still to make, in the order each webhook's worker takes them.
    CREATE TABLE webhook_deliveries (
        webhook BIGINT NOT NULL,
        due_ms  BIGINT NOT NULL,
        number  BIGINT NOT NULL,
        record  TEXT NOT NULL,
        PRIMARY KEY (webhook, due_ms, number)
    );
    CREATE TABLE webhook_failed_deliveries (
        number BIGINT PRIMARY KEY,
        record TEXT NOT NULL
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
