//! Each tenant's Lightning port, in PostgreSQL: the table's uniqueness is what keeps a
//! port to one tenant across replicas.

use std::ops::RangeInclusive;

use super::PgStore;
use crate::error::Error;
use crate::store::{Ports, edits};

impl Ports for PgStore {
    fn p2p_port(&self, node_id: &[u8; 33], range: RangeInclusive<u16>) -> Result<u16, Error> {
        let id = &node_id[..];
        let (low, high) = (i32::from(*range.start()), i32::from(*range.end()));
        self.write(async |txn| {
            let mine = txn
                .query_opt("SELECT port FROM p2p_ports WHERE node_id = $1", &[&id])
                .await?
                .map(|r| r.get::<_, i32>(0));
            if let Some(port) = mine
                && (low..=high).contains(&port)
            {
                return Ok(port as u16);
            }
            // The lowest port of the range no other tenant holds.
            let free = txn
                .query_opt(
                    "SELECT p FROM generate_series($1::INT, $2::INT) AS p
                     WHERE NOT EXISTS (
                         SELECT 1 FROM p2p_ports WHERE port = p AND node_id <> $3)
                     ORDER BY p LIMIT 1",
                    &[&low, &high, &id],
                )
                .await?;
            let Some(free) = free else {
                return Err(edits::ports_exhausted(&range).into());
            };
            let port: i32 = free.get(0);
            txn.execute(
                "INSERT INTO p2p_ports (node_id, port) VALUES ($1, $2)
                 ON CONFLICT (node_id) DO UPDATE SET port = excluded.port",
                &[&id, &port],
            )
            .await?;
            Ok(port as u16)
        })
    }
}
