//! Each tenant's Lightning port, from the operator's range: given once and kept, so the
//! node is found where its channel peers last saw it, and never shared between tenants.

use std::ops::RangeInclusive;

use redb::ReadableTable;

use super::schema::P2P_PORTS;
use super::{Ports, RedbStore, storage};
use crate::error::Error;

impl Ports for RedbStore {
    fn p2p_port(&self, node_id: &[u8; 33], range: RangeInclusive<u16>) -> Result<u16, Error> {
        let txn = self.db.begin_write().map_err(storage)?;
        let port;
        {
            let mut table = txn.open_table(P2P_PORTS).map_err(storage)?;
            if let Some(p) = table.get(&node_id[..]).map_err(storage)?.map(|v| v.value())
                && range.contains(&p)
            {
                return Ok(p);
            }
            let mut taken = std::collections::BTreeSet::new();
            for entry in table.iter().map_err(storage)? {
                let (id, p) = entry.map_err(storage)?;
                if id.value() != &node_id[..] {
                    taken.insert(p.value());
                }
            }
            port = range
                .clone()
                .find(|p| !taken.contains(p))
                .ok_or_else(|| super::edits::ports_exhausted(&range))?;
            table.insert(&node_id[..], port).map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        Ok(port)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::{Place, on_every_backend};

    fn each_tenant_keeps_its_own_port_and_a_full_range_is_refused(place: &Place) {
        let store = place.open();
        let (a, b, c) = ([2u8; 33], [3u8; 33], [4u8; 33]);
        assert_eq!(store.p2p_port(&a, 9000..=9001).unwrap(), 9000);
        assert_eq!(store.p2p_port(&b, 9000..=9001).unwrap(), 9001);
        assert_eq!(store.p2p_port(&a, 9000..=9001).unwrap(), 9000, "kept");
        let err = store.p2p_port(&c, 9000..=9001).unwrap_err().to_string();
        assert!(err.contains("9000-9001"), "{err}");
        // A range moved: a tenant outside it gets a port in the new one.
        assert_eq!(store.p2p_port(&b, 9001..=9003).unwrap(), 9001);
        assert_eq!(store.p2p_port(&a, 9001..=9003).unwrap(), 9002);
    }

    on_every_backend!(each_tenant_keeps_its_own_port_and_a_full_range_is_refused);
}
