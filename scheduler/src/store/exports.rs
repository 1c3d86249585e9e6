//! Tenants' exports. The record is written first, in its own transaction, before anything
//! of the export is done: from that commit on the tenant's node is never started again.

use redb::{ReadableDatabase, ReadableTable};

use super::records::ExportRecord;
use super::schema::*;
use super::{Exports, RedbStore, edits, from_json, require_registered, storage, to_json};
use crate::error::Error;

impl Exports for RedbStore {
    fn begin_export(&self, node_id: &[u8; 33], token: &str) -> Result<ExportRecord, Error> {
        let txn = self.db.begin_write().map_err(storage)?;
        let record = {
            require_registered(&txn, node_id)?;
            let mut exports = txn.open_table(EXPORTS).map_err(storage)?;
            match stored(&exports, node_id)? {
                Some(record) => return Ok(record),
                None => {
                    let record = edits::new_export(token);
                    exports
                        .insert(&node_id[..], to_json(&record)?.as_str())
                        .map_err(storage)?;
                    record
                }
            }
        };
        txn.commit().map_err(storage)?;
        Ok(record)
    }

    fn export(&self, node_id: &[u8; 33]) -> Result<Option<ExportRecord>, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        stored(&txn.open_table(EXPORTS).map_err(storage)?, node_id)
    }

    fn exports(&self) -> Result<Vec<([u8; 33], ExportRecord)>, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(EXPORTS).map_err(storage)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (k, v) = entry.map_err(storage)?;
            let id: [u8; 33] = k
                .value()
                .try_into()
                .map_err(|_| storage("an export keyed by a bad node id"))?;
            out.push((id, from_json(v.value())?));
        }
        Ok(out)
    }

    fn update_export(
        &self,
        node_id: &[u8; 33],
        change: &(dyn Fn(&mut ExportRecord) + Sync),
    ) -> Result<ExportRecord, Error> {
        let txn = self.db.begin_write().map_err(storage)?;
        let record = {
            let mut exports = txn.open_table(EXPORTS).map_err(storage)?;
            let Some(mut record) = stored(&exports, node_id)? else {
                return Err(edits::no_export(node_id));
            };
            change(&mut record);
            exports
                .insert(&node_id[..], to_json(&record)?.as_str())
                .map_err(storage)?;
            record
        };
        txn.commit().map_err(storage)?;
        Ok(record)
    }
}

/// The tenant's export as `exports` holds it.
fn stored(
    exports: &impl ReadableTable<&'static [u8], &'static str>,
    node_id: &[u8; 33],
) -> Result<Option<ExportRecord>, Error> {
    let value = exports.get(&node_id[..]).map_err(storage)?;
    value.map(|v| from_json(v.value())).transpose()
}
