//! Tenants' exports, in PostgreSQL.

use super::PgStore;
use super::tenants::require_registered;
use crate::error::Error;
use crate::store::records::ExportRecord;
use crate::store::{Exports, edits, from_json, storage, to_json};

impl Exports for PgStore {
    fn begin_export(&self, node_id: &[u8; 33], token: &str) -> Result<ExportRecord, Error> {
        let id = &node_id[..];
        self.write(async |txn| {
            require_registered(txn, node_id).await?;
            let found = txn
                .query_opt("SELECT record FROM exports WHERE node_id = $1", &[&id])
                .await?;
            if let Some(found) = found {
                return Ok(from_json(found.get(0))?);
            }
            let record = edits::new_export(token);
            txn.execute(
                "INSERT INTO exports (node_id, record) VALUES ($1, $2)",
                &[&id, &to_json(&record)?],
            )
            .await?;
            Ok(record)
        })
    }

    fn export(&self, node_id: &[u8; 33]) -> Result<Option<ExportRecord>, Error> {
        self.record("SELECT record FROM exports WHERE node_id = $1", node_id)
    }

    fn exports(&self) -> Result<Vec<([u8; 33], ExportRecord)>, Error> {
        self.read(async |txn| {
            let rows = txn
                .query("SELECT node_id, record FROM exports ORDER BY node_id", &[])
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let id: [u8; 33] = row
                    .get::<_, &[u8]>(0)
                    .try_into()
                    .map_err(|_| storage("an export keyed by a bad node id"))?;
                out.push((id, from_json(row.get(1))?));
            }
            Ok(out)
        })
    }

    fn update_export(
        &self,
        node_id: &[u8; 33],
        change: &(dyn Fn(&mut ExportRecord) + Sync),
    ) -> Result<ExportRecord, Error> {
        let id = &node_id[..];
        self.write(async |txn| {
            let found = txn
                .query_opt("SELECT record FROM exports WHERE node_id = $1", &[&id])
                .await?;
            let Some(found) = found else {
                return Err(edits::no_export(node_id).into());
            };
            let mut record: ExportRecord = from_json(found.get(0))?;
            change(&mut record);
            txn.execute(
                "UPDATE exports SET record = $2 WHERE node_id = $1",
                &[&id, &to_json(&record)?],
            )
            .await?;
            Ok(record)
        })
    }
}
