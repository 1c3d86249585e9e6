//! node-host's on-disk schema, in one place: every table of its six redb databases, and
//! the namespaces it keeps in LDK's store. (The files themselves are named in
//! `paths.rs`.) Each database records its schema version in [`META`], checked at open.
//!
//! Values are JSON where they are records (invoices, payments), so they can gain fields
//! without a migration: new fields must be `#[serde(default)]`.

use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};

/// The schema version of each database, stored under [`META`] / [`SCHEMA_VERSION_KEY`].
pub const SCHEMA_VERSION: u64 = 1;
/// Database-wide facts: `schema_version`.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Key of the schema version in [`META`].
pub const SCHEMA_VERSION_KEY: &str = "schema_version";

// `signer_state.redb`
/// The signer's state: key → version (u64 BE) ‖ signature length (u16 BE) ‖ signature ‖
/// value.
pub const SIGNER_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("signer_state");
/// The tenant's state key, pinned from the first answer whose attestation the node key
/// signed: [`STATE_KEY_ROW`] → state key (33 bytes) ‖ attestation (64 bytes).
pub const STATE_KEY: TableDefinition<&str, &[u8]> = TableDefinition::new("state_key");
/// The one row of [`STATE_KEY`].
pub const STATE_KEY_ROW: &str = "pinned";

// `channel_signers.redb`
/// What node-host knows of each channel's signer (see `signer_link::channel::book`):
/// channel id (VLS dbid) → record (JSON).
pub const CHANNEL_SIGNERS: TableDefinition<u64, &[u8]> = TableDefinition::new("channel_signers");

// `invoices.redb`
/// Invoices: label → invoice record (JSON).
pub const INVOICES_BY_LABEL: TableDefinition<&str, &[u8]> =
    TableDefinition::new("invoices_by_label");
/// Invoices: payment hash → label.
pub const INVOICE_LABELS_BY_HASH: TableDefinition<&[u8; 32], &str> =
    TableDefinition::new("invoice_labels_by_hash");
/// Invoice counters: `created` (the last created_index), `paid` (the last pay_index).
pub const INVOICE_COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("invoice_counters");

// `payments.redb`
/// Outgoing payments: payment hash → payment record (JSON).
pub const PAYMENTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("outgoing_payments");
/// Payment counters: `created` (the last created_index).
pub const PAYMENT_COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("payment_counters");

// `outbox.redb`
/// Events raised and not yet stored by the scheduler: sequence number → event (JSON).
pub const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// Events raised once only (a payment's `invoice_payment`), kept after they leave the
/// outbox so a replayed LDK event raises nothing new: once-key → event id.
pub const OUTBOX_RAISED: TableDefinition<&str, &str> = TableDefinition::new("outbox_raised");
/// Outbox counters: `seq` (the last sequence number given).
pub const OUTBOX_COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("outbox_counters");

// `ldk.redb`
/// LDK's store: (primary namespace, secondary namespace, key) → value, as LDK's
/// `KVStoreSync` names them (see `store::ldk_store`).
pub const LDK_KV: TableDefinition<(&str, &str, &str), &[u8]> = TableDefinition::new("ldk_kv");
/// Key in [`META`], set (to 1) in the transaction that took in the files of the older
/// `ldk/` directory store: from then on this database is the node's LDK state.
pub const LDK_FILES_MIGRATED_KEY: &str = "ldk_files_migrated";

// LDK's store (`ldk.redb`): what node-host keeps there besides LDK's own objects.
/// Peers' addresses for reconnecting: node id (hex) → `host:port`.
pub const PEERS_NAMESPACE: &str = "peers";
/// The on-chain wallet (BDK's change set, JSON), under [`WALLET_KEY`].
pub const WALLET_NAMESPACE: &str = "wallet";
/// Key of the wallet's change set in [`WALLET_NAMESPACE`].
pub const WALLET_KEY: &str = "changeset";

/// A database that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SchemaError(String);

/// Opens (creating) the database at `path`, checking its schema version. A database from
/// before versions were recorded has this layout: it is marked version 1, its data kept.
pub fn open(path: &Path) -> Result<Database, SchemaError> {
    let failed = |e: &dyn std::fmt::Display| SchemaError(format!("{}: {e}", path.display()));
    let db = Database::create(path).map_err(|e| failed(&e))?;
    let txn = db.begin_write().map_err(|e| failed(&e))?;
    {
        let mut meta = txn.open_table(META).map_err(|e| failed(&e))?;
        let found = meta
            .get(SCHEMA_VERSION_KEY)
            .map_err(|e| failed(&e))?
            .map(|v| v.value());
        match found {
            None => {
                meta.insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)
                    .map_err(|e| failed(&e))?;
            }
            Some(v) if v == SCHEMA_VERSION => {}
            Some(v) => {
                return Err(SchemaError(format!(
                    "{} has schema version {v}, and this node-host reads version {SCHEMA_VERSION}: run the node-host that wrote it, or one that migrates it",
                    path.display()
                )));
            }
        }
    }
    txn.commit().map_err(|e| failed(&e))?;
    Ok(db)
}

#[cfg(test)]
mod tests {
    use redb::ReadableDatabase;

    use super::*;

    #[test]
    fn a_new_database_gets_the_version_and_opens_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.redb");
        drop(open(&path).unwrap());
        let db = open(&path).unwrap();
        let txn = db.begin_read().unwrap();
        let meta = txn.open_table(META).unwrap();
        assert_eq!(
            meta.get(SCHEMA_VERSION_KEY).unwrap().unwrap().value(),
            SCHEMA_VERSION
        );
    }

    #[test]
    fn a_database_from_before_versions_keeps_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.redb");
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(INVOICE_COUNTERS)
                .unwrap()
                .insert("created", 7)
                .unwrap();
            txn.commit().unwrap();
        }
        let db = open(&path).unwrap();
        let txn = db.begin_read().unwrap();
        let counters = txn.open_table(INVOICE_COUNTERS).unwrap();
        assert_eq!(counters.get("created").unwrap().unwrap().value(), 7);
    }

    #[test]
    fn another_schema_version_is_refused_and_says_which() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.redb");
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION + 1)
                .unwrap();
            txn.commit().unwrap();
        }
        let err = open(&path).unwrap_err().to_string();
        assert!(err.contains("schema version 2"), "{err}");
        assert!(err.contains("d.redb"), "{err}");
    }
}
