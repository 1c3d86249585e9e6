//! node-host's schema, in one place: the namespaces it keeps in the node's store
//! (`store::kv`, on redb or PostgreSQL) beside LDK's own objects, and the redb tables —
//! `ldk.redb`'s, and those of the five databases of before, taken in at start (see
//! `store::legacy`). (The files themselves are named in `paths.rs`.) A redb database
//! records its schema version in [`META`], checked at open.
//!
//! Values are JSON where they are records (invoices, payments), so they can gain fields
//! without a migration: new fields must be `#[serde(default)]`. Counters are 8 bytes,
//! big-endian; numbered records are keyed by `kv::number_key`.

use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};

use super::kv::Space;

/// The primary namespace of everything node-host keeps in the node's store itself.
pub const SKYLIGHT: &str = "skylight";
/// The signer's state: key → version (u64 BE) ‖ signature length (u16 BE) ‖ signature ‖
/// value.
pub const SIGNER_ENTRIES: Space = Space {
    primary: SKYLIGHT,
    secondary: "signer_state",
};
/// The tenant's state key, pinned from the first answer whose attestation the node key
/// signed: [`PINNED_KEY`] → state key (33 bytes) ‖ attestation (64 bytes).
pub const SIGNER_KEY: Space = Space {
    primary: SKYLIGHT,
    secondary: "signer_key",
};
/// The one key of [`SIGNER_KEY`].
pub const PINNED_KEY: &str = "pinned";
/// What node-host knows of each channel's signer (see `signer_link::channel::book`):
/// channel id (VLS dbid, as a number key) → record (JSON).
pub const CHANNEL_RECORDS: Space = Space {
    primary: SKYLIGHT,
    secondary: "channel_signers",
};
/// Invoices: label → invoice record (JSON).
pub const INVOICES: Space = Space {
    primary: SKYLIGHT,
    secondary: "invoices",
};
/// Invoices: payment hash (hex) → label.
pub const INVOICE_LABELS: Space = Space {
    primary: SKYLIGHT,
    secondary: "invoice_labels",
};
/// Outgoing payments: payment hash (hex) → payment record (JSON).
pub const PAYMENTS: Space = Space {
    primary: SKYLIGHT,
    secondary: "payments",
};
/// Events raised and not yet stored by the scheduler: sequence number (number key) →
/// event (JSON).
pub const OUTBOX: Space = Space {
    primary: SKYLIGHT,
    secondary: "outbox",
};
/// Events raised once only (a payment's `invoice_payment`), kept after they leave the
/// outbox so a replayed LDK event raises nothing new: once-key → event id.
pub const OUTBOX_RAISED: Space = Space {
    primary: SKYLIGHT,
    secondary: "outbox_raised",
};
/// Counters, each the last number given: [`INVOICES_CREATED`], [`INVOICES_PAID`],
/// [`PAYMENTS_CREATED`], [`OUTBOX_SEQ`], [`CHANNELS_CREATED`].
pub const COUNTERS: Space = Space {
    primary: SKYLIGHT,
    secondary: "counters",
};
/// The last invoice `created_index`.
pub const INVOICES_CREATED: &str = "invoices_created";
/// The last invoice `pay_index`.
pub const INVOICES_PAID: &str = "invoices_paid";
/// The last payment `created_index`.
pub const PAYMENTS_CREATED: &str = "payments_created";
/// The last outbox sequence number.
pub const OUTBOX_SEQ: &str = "outbox_seq";
/// The last channel id (VLS dbid) given.
pub const CHANNELS_CREATED: &str = "channels_created";
/// The node's own settings: [`RECEIVE_AUTH_KEY`], [`P2P_ADDR`].
pub const NODE: Space = Space {
    primary: SKYLIGHT,
    secondary: "node",
};
/// The blinded-path receive key (32 bytes), made on first use.
pub const RECEIVE_AUTH_KEY: &str = "receive_auth_key";
/// Where the node last listened for peers (`host:port`).
pub const P2P_ADDR: &str = "p2p_addr";
/// Facts about the store itself: [`LEGACY_TAKEN_IN`].
pub const STORE_META: Space = Space {
    primary: SKYLIGHT,
    secondary: "meta",
};
/// Set in the commit that took in the files of before (`store::legacy`): from then on
/// any of them left behind is an older copy, removed unread.
pub const LEGACY_TAKEN_IN: &str = "legacy_taken_in";

/// The schema version of each database, stored under [`META`] / [`SCHEMA_VERSION_KEY`].
pub const SCHEMA_VERSION: u64 = 1;
/// Database-wide facts: `schema_version`.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Key of the schema version in [`META`].
pub const SCHEMA_VERSION_KEY: &str = "schema_version";

// The databases of before, read only by `store::legacy`.
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
pub const PAYMENTS_TABLE: TableDefinition<&[u8; 32], &[u8]> =
    TableDefinition::new("outgoing_payments");
/// Payment counters: `created` (the last created_index).
pub const PAYMENT_COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("payment_counters");

// `outbox.redb`
/// Events raised and not yet stored by the scheduler: sequence number → event (JSON).
pub const OUTBOX_TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// Events raised once only: once-key → event id.
pub const OUTBOX_RAISED_TABLE: TableDefinition<&str, &str> =
    TableDefinition::new("outbox_raised");
/// Outbox counters: `seq` (the last sequence number given).
pub const OUTBOX_COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("outbox_counters");

// `ldk.redb`
/// LDK's store: (primary namespace, secondary namespace, key) → value, as LDK's
/// `KVStoreSync` names them (see `store::ldk_store`).
pub const LDK_KV: TableDefinition<(&str, &str, &str), &[u8]> = TableDefinition::new("ldk_kv");
/// Key in [`META`], set (to 1) in the transaction that took in the files of the older
/// `ldk/` directory store: from then on this database is the node's LDK state.
pub const LDK_FILES_MIGRATED_KEY: &str = "ldk_files_migrated";

// What node-host keeps in LDK's own way beside LDK's objects (from before its
// `skylight` namespaces).
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
