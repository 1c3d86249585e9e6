//! Tenants' outgoing webhooks, the events node-hosts raised and the deliveries still to make.
//!
//! An event is stored together with one delivery per webhook of its tenant, in one
//! transaction, and only then acknowledged to the node-host: from there the scheduler owns
//! it. A delivery leaves the queue only in the transaction that records its outcome
//! (delivered, due again later, or given up), so a crash at any point sends it again rather
//! than losing it: at least once, with the same event id.

use redb::{
    ReadableDatabase, ReadableMultimapTable, ReadableTable, ReadableTableMetadata, WriteTransaction,
};

use super::edits::{self, not_yours};
use super::records::{DeliveryRecord, FailedDeliveryRecord, WebhookRecord};
use super::schema::*;
use super::{RedbStore, Webhooks, from_json, storage, to_json};
use crate::error::Error;

/// Greenlight's limit, kept: a tenant has at most this many webhooks.
pub const MAX_WEBHOOKS_PER_TENANT: usize = 20;

/// Where a delivery sits in the queue: (webhook id, due unix ms, delivery number).
pub type DeliveryKey = (u64, u64, u64);

/// An event to store, as a node-host raised it and with the body every webhook is sent.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The event's id.
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// The JSON body.
    pub body: String,
}

/// The last number given under `key` in [`META`] (0 before the first).
fn last_given(meta: &redb::Table<&str, &str>, key: &str) -> Result<u64, Error> {
    Ok(meta
        .get(key)
        .map_err(storage)?
        .map(|v| v.value().parse::<u64>().unwrap_or(0))
        .unwrap_or(0))
}

/// Takes the next number under `key` in [`META`].
fn next_counter(txn: &WriteTransaction, key: &str) -> Result<u64, Error> {
    let mut meta = txn.open_table(META).map_err(storage)?;
    let next = last_given(&meta, key)? + 1;
    meta.insert(key, next.to_string().as_str())
        .map_err(storage)?;
    Ok(next)
}

impl Webhooks for RedbStore {
    fn add_webhook(&self, node_id: &[u8; 33], uri: &str, secret: &str) -> Result<u64, Error> {
        let txn = self.db.begin_write().map_err(storage)?;
        let id;
        {
            let mut by_tenant = txn
                .open_multimap_table(WEBHOOKS_BY_TENANT)
                .map_err(storage)?;
            let has = by_tenant.get(&node_id[..]).map_err(storage)?.count();
            if has >= MAX_WEBHOOKS_PER_TENANT {
                return Err(edits::too_many_webhooks());
            }
            id = next_counter(&txn, LAST_WEBHOOK_ID_KEY)?;
            let record = edits::new_webhook(node_id, uri, secret);
            txn.open_table(WEBHOOKS)
                .map_err(storage)?
                .insert(id, to_json(&record)?.as_str())
                .map_err(storage)?;
            by_tenant.insert(&node_id[..], id).map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        Ok(id)
    }

    fn webhooks_of(&self, node_id: &[u8; 33]) -> Result<Vec<(u64, WebhookRecord)>, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let by_tenant = txn
            .open_multimap_table(WEBHOOKS_BY_TENANT)
            .map_err(storage)?;
        let table = txn.open_table(WEBHOOKS).map_err(storage)?;
        let mut out = Vec::new();
        for id in by_tenant.get(&node_id[..]).map_err(storage)? {
            let id = id.map_err(storage)?.value();
            if let Some(v) = table.get(id).map_err(storage)? {
                out.push((id, from_json(v.value())?));
            }
        }
        Ok(out)
    }

    fn webhook(&self, id: u64) -> Result<Option<WebhookRecord>, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(WEBHOOKS).map_err(storage)?;
        let value = table.get(id).map_err(storage)?;
        value.map(|v| from_json(v.value())).transpose()
    }

    fn webhook_ids(&self) -> Result<Vec<u64>, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(WEBHOOKS).map_err(storage)?;
        let mut ids = Vec::new();
        for row in table.iter().map_err(storage)? {
            ids.push(row.map_err(storage)?.0.value());
        }
        Ok(ids)
    }

    fn delete_webhooks(&self, node_id: &[u8; 33], ids: &[u64]) -> Result<(), Error> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut by_tenant = txn
                .open_multimap_table(WEBHOOKS_BY_TENANT)
                .map_err(storage)?;
            let mut table = txn.open_table(WEBHOOKS).map_err(storage)?;
            let mut queue = txn.open_table(DELIVERY_QUEUE).map_err(storage)?;
            for &id in ids {
                if !by_tenant.remove(&node_id[..], id).map_err(storage)? {
                    return Err(not_yours(id));
                }
                table.remove(id).map_err(storage)?;
                queue
                    .retain_in((id, 0, 0)..=(id, u64::MAX, u64::MAX), |_, _| false)
                    .map_err(storage)?;
            }
        }
        txn.commit().map_err(storage)
    }

    fn rotate_webhook_secret(
        &self,
        node_id: &[u8; 33],
        id: u64,
        secret: &str,
    ) -> Result<(), Error> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut table = txn.open_table(WEBHOOKS).map_err(storage)?;
            let current = table
                .get(id)
                .map_err(storage)?
                .map(|v| v.value().to_string());
            let mut record: WebhookRecord = match current {
                Some(json) => from_json(&json)?,
                None => return Err(not_yours(id)),
            };
            edits::rotate(&mut record, node_id, id, secret)?;
            table
                .insert(id, to_json(&record)?.as_str())
                .map_err(storage)?;
        }
        txn.commit().map_err(storage)
    }

    fn store_events(
        &self,
        node_id: &[u8; 33],
        events: &[NewEvent],
        now_ms: u64,
    ) -> Result<(u32, Vec<u64>), Error> {
        let node_hex = hex::encode(node_id);
        let txn = self.db.begin_write().map_err(storage)?;
        let webhooks: Vec<u64>;
        let mut new = 0;
        {
            webhooks = txn
                .open_multimap_table(WEBHOOKS_BY_TENANT)
                .map_err(storage)?
                .get(&node_id[..])
                .map_err(storage)?
                .map(|id| id.map(|v| v.value()).map_err(storage))
                .collect::<Result<_, _>>()?;
            let mut seen = txn.open_table(EVENTS).map_err(storage)?;
            let mut queue = txn.open_table(DELIVERY_QUEUE).map_err(storage)?;
            let mut meta = txn.open_table(META).map_err(storage)?;
            let mut number = last_given(&meta, LAST_DELIVERY_KEY)?;
            for event in events {
                let key = (&node_id[..], event.event_id.as_str());
                if seen.get(key).map_err(storage)?.is_some() {
                    continue;
                }
                let record = edits::new_event(event, webhooks.len());
                seen.insert(key, to_json(&record)?.as_str())
                    .map_err(storage)?;
                new += 1;
                // The same delivery for every webhook: made once.
                let delivery = to_json(&edits::new_delivery(&node_hex, event))?;
                for &webhook in &webhooks {
                    number += 1;
                    queue
                        .insert((webhook, now_ms, number), delivery.as_str())
                        .map_err(storage)?;
                }
            }
            meta.insert(LAST_DELIVERY_KEY, number.to_string().as_str())
                .map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        // Every webhook got a delivery if any event was new.
        let poked = if new > 0 { webhooks } else { Vec::new() };
        Ok((new, poked))
    }

    fn has_event(&self, node_id: &[u8; 33], event_id: &str) -> Result<bool, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(EVENTS).map_err(storage)?;
        Ok(table
            .get((&node_id[..], event_id))
            .map_err(storage)?
            .is_some())
    }

    fn due_deliveries(
        &self,
        webhook: u64,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<(DeliveryKey, DeliveryRecord)>, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let queue = txn.open_table(DELIVERY_QUEUE).map_err(storage)?;
        let mut out = Vec::new();
        for row in queue
            .range((webhook, 0, 0)..=(webhook, now_ms, u64::MAX))
            .map_err(storage)?
            .take(limit)
        {
            let (k, v) = row.map_err(storage)?;
            out.push((k.value(), from_json(v.value())?));
        }
        Ok(out)
    }

    fn next_due(&self, webhook: u64) -> Result<Option<u64>, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let queue = txn.open_table(DELIVERY_QUEUE).map_err(storage)?;
        let first = queue
            .range((webhook, 0, 0)..=(webhook, u64::MAX, u64::MAX))
            .map_err(storage)?
            .next();
        Ok(match first {
            Some(row) => Some(row.map_err(storage)?.0.value().1),
            None => None,
        })
    }

    fn pending_deliveries(
        &self,
        limit: usize,
    ) -> Result<Vec<(DeliveryKey, DeliveryRecord)>, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let queue = txn.open_table(DELIVERY_QUEUE).map_err(storage)?;
        let mut out = Vec::new();
        for row in queue.iter().map_err(storage)? {
            let (k, v) = row.map_err(storage)?;
            out.push((k.value(), from_json(v.value())?));
        }
        out.sort_by_key(|((_, due, n), _)| (*due, *n));
        out.truncate(limit);
        Ok(out)
    }

    fn queued_deliveries(&self) -> Result<u64, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let queue = txn.open_table(DELIVERY_QUEUE).map_err(storage)?;
        queue.len().map_err(storage)
    }

    fn delivery_attempted(
        &self,
        key: DeliveryKey,
        record: &DeliveryRecord,
        again_at: Option<u64>,
    ) -> Result<(), Error> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut queue = txn.open_table(DELIVERY_QUEUE).map_err(storage)?;
            let was_queued = queue.remove(key).map_err(storage)?.is_some();
            if let (true, Some(due)) = (was_queued, again_at) {
                queue
                    .insert((key.0, due, key.2), to_json(record)?.as_str())
                    .map_err(storage)?;
            }
        }
        txn.commit().map_err(storage)
    }

    fn delivery_failed(
        &self,
        key: DeliveryKey,
        record: &DeliveryRecord,
        uri: &str,
    ) -> Result<(), Error> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut queue = txn.open_table(DELIVERY_QUEUE).map_err(storage)?;
            if queue.remove(key).map_err(storage)?.is_some() {
                let failed = edits::given_up(key.0, uri, record);
                txn.open_table(FAILED_DELIVERIES)
                    .map_err(storage)?
                    .insert(key.2, to_json(&failed)?.as_str())
                    .map_err(storage)?;
            }
        }
        txn.commit().map_err(storage)
    }

    fn failed_deliveries(&self) -> Result<Vec<FailedDeliveryRecord>, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(FAILED_DELIVERIES).map_err(storage)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(storage)? {
            out.push(from_json(row.map_err(storage)?.1.value())?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
