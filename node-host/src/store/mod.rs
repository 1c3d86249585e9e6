//! node-host's own databases (redb): the signer's state, invoices and outgoing payments,
//! LDK's store (on redb or PostgreSQL, see [`kv`]), each with its tables listed, and its version checked at open, in [`schema`].

pub mod invoices;
pub mod kv;
pub mod ldk_store;
pub mod outbox;
pub mod payments;
pub mod schema;
pub mod signer_state;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

/// Every record (JSON) in `table`, in key order; a failure as text, for the store's error.
fn records<K, T>(db: &Database, table: TableDefinition<K, &'static [u8]>) -> Result<Vec<T>, String>
where
    K: redb::Key + 'static,
    T: serde::de::DeserializeOwned,
{
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let table = txn.open_table(table).map_err(|e| e.to_string())?;
    let rows = table.iter().map_err(|e| e.to_string())?;
    rows.map(|row| {
        let (_, v) = row.map_err(|e| e.to_string())?;
        serde_json::from_slice(v.value()).map_err(|e| e.to_string())
    })
    .collect()
}

/// The record (JSON) under `key` in `table`, if any.
fn record<K, T>(
    db: &Database,
    table: TableDefinition<K, &'static [u8]>,
    key: K::SelfType<'_>,
) -> Result<Option<T>, String>
where
    K: redb::Key + 'static,
    T: serde::de::DeserializeOwned,
{
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let table = txn.open_table(table).map_err(|e| e.to_string())?;
    match table.get(key).map_err(|e| e.to_string())? {
        Some(v) => serde_json::from_slice(v.value())
            .map(Some)
            .map_err(|e| e.to_string()),
        None => Ok(None),
    }
}

/// Raises the counter `name` by one and returns its new value: the first is 1.
fn next(counters: &mut redb::Table<&str, u64>, name: &str) -> Result<u64, redb::StorageError> {
    let next = counters.get(name)?.map_or(0, |v| v.value()) + 1;
    counters.insert(name, next)?;
    Ok(next)
}
