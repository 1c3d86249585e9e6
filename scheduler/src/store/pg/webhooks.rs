//! Tenants' outgoing webhooks, their events and deliveries, in PostgreSQL. The same
//! guarantees as the embedded database's: an event is stored with its deliveries in one
//! transaction, and a delivery leaves the queue only in the transaction that records its
//! outcome.

use skylight_postgres::tokio_postgres::Transaction;

use super::{PgStore, Tx, big, small};
use crate::error::Error;
use crate::store::edits::{self, not_yours};
use crate::store::records::{DeliveryRecord, FailedDeliveryRecord, WebhookRecord};
use crate::store::schema::{LAST_DELIVERY_KEY, LAST_WEBHOOK_ID_KEY};
use crate::store::webhooks::{DeliveryKey, MAX_WEBHOOKS_PER_TENANT, NewEvent};
use crate::store::{Webhooks, from_json, to_json};

/// The last number given under `key` (0 before the first).
async fn last_given(txn: &Transaction<'_>, key: &str) -> Tx<u64> {
    let row = txn
        .query_opt("SELECT value FROM scheduler_meta WHERE key = $1", &[&key])
        .await?;
    Ok(row
        .and_then(|r| r.get::<_, &str>(0).parse::<u64>().ok())
        .unwrap_or(0))
}

/// Records `value` as the last number given under `key`.
async fn set_given(txn: &Transaction<'_>, key: &str, value: u64) -> Tx<()> {
    txn.execute(
        "INSERT INTO scheduler_meta (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&key, &value.to_string()],
    )
    .await?;
    Ok(())
}

/// Queues the delivery `record` under `key`.
async fn enqueue(txn: &Transaction<'_>, key: DeliveryKey, record: &str) -> Tx<()> {
    txn.execute(
        "INSERT INTO webhook_deliveries (webhook, due_ms, number, record)
         VALUES ($1, $2, $3, $4)",
        &[&big(key.0), &big(key.1), &big(key.2), &record],
    )
    .await?;
    Ok(())
}

/// Takes the delivery under `key` off the queue; whether it was there (its webhook may
/// have been deleted meanwhile).
async fn dequeue(txn: &Transaction<'_>, key: DeliveryKey) -> Tx<bool> {
    let removed = txn
        .execute(
            "DELETE FROM webhook_deliveries WHERE webhook = $1 AND due_ms = $2 AND number = $3",
            &[&big(key.0), &big(key.1), &big(key.2)],
        )
        .await?;
    Ok(removed > 0)
}

/// Queued deliveries as the queue's rows give them: key columns, then the record.
fn deliveries(
    rows: Vec<skylight_postgres::tokio_postgres::Row>,
) -> Tx<Vec<(DeliveryKey, DeliveryRecord)>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let key = (
            small(row.get(0)),
            small(row.get(1)),
            small(row.get::<_, i64>(2)),
        );
        out.push((key, from_json(row.get(3))?));
    }
    Ok(out)
}

impl Webhooks for PgStore {
    fn add_webhook(&self, node_id: &[u8; 33], uri: &str, secret: &str) -> Result<u64, Error> {
        let id = &node_id[..];
        self.write(async |txn| {
            let has: i64 = txn
                .query_one("SELECT count(*) FROM webhooks WHERE node_id = $1", &[&id])
                .await?
                .get(0);
            if has as usize >= MAX_WEBHOOKS_PER_TENANT {
                return Err(edits::too_many_webhooks().into());
            }
            let webhook = last_given(txn, LAST_WEBHOOK_ID_KEY).await? + 1;
            set_given(txn, LAST_WEBHOOK_ID_KEY, webhook).await?;
            let record = edits::new_webhook(node_id, uri, secret);
            txn.execute(
                "INSERT INTO webhooks (id, node_id, record) VALUES ($1, $2, $3)",
                &[&big(webhook), &id, &to_json(&record)?],
            )
            .await?;
            Ok(webhook)
        })
    }

    fn webhooks_of(&self, node_id: &[u8; 33]) -> Result<Vec<(u64, WebhookRecord)>, Error> {
        let id = &node_id[..];
        self.read(async |txn| {
            let rows = txn
                .query(
                    "SELECT id, record FROM webhooks WHERE node_id = $1 ORDER BY id",
                    &[&id],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push((small(row.get(0)), from_json(row.get(1))?));
            }
            Ok(out)
        })
    }

    fn webhook(&self, id: u64) -> Result<Option<WebhookRecord>, Error> {
        self.read(async |txn| {
            let row = txn
                .query_opt("SELECT record FROM webhooks WHERE id = $1", &[&big(id)])
                .await?;
            Ok(row.map(|r| from_json(r.get(0))).transpose()?)
        })
    }

    fn webhook_ids(&self) -> Result<Vec<u64>, Error> {
        self.read(async |txn| {
            let rows = txn
                .query("SELECT id FROM webhooks ORDER BY id", &[])
                .await?;
            Ok(rows.iter().map(|r| small(r.get(0))).collect())
        })
    }

    fn delete_webhooks(&self, node_id: &[u8; 33], ids: &[u64]) -> Result<(), Error> {
        let id = &node_id[..];
        self.write(async |txn| {
            for &webhook in ids {
                let gone = txn
                    .execute(
                        "DELETE FROM webhooks WHERE id = $1 AND node_id = $2",
                        &[&big(webhook), &id],
                    )
                    .await?;
                if gone == 0 {
                    // Nothing of this call is kept: the transaction is rolled back.
                    return Err(not_yours(webhook).into());
                }
                txn.execute(
                    "DELETE FROM webhook_deliveries WHERE webhook = $1",
                    &[&big(webhook)],
                )
                .await?;
            }
            Ok(())
        })
    }

    fn rotate_webhook_secret(
        &self,
        node_id: &[u8; 33],
        id: u64,
        secret: &str,
    ) -> Result<(), Error> {
        self.write(async |txn| {
            let found = txn
                .query_opt("SELECT record FROM webhooks WHERE id = $1", &[&big(id)])
                .await?;
            let Some(found) = found else {
                return Err(not_yours(id).into());
            };
            let mut record: WebhookRecord = from_json(found.get(0))?;
            edits::rotate(&mut record, node_id, id, secret)?;
            txn.execute(
                "UPDATE webhooks SET record = $2 WHERE id = $1",
                &[&big(id), &to_json(&record)?],
            )
            .await?;
            Ok(())
        })
    }

    fn store_events(
        &self,
        node_id: &[u8; 33],
        events: &[NewEvent],
        now_ms: u64,
    ) -> Result<(u32, Vec<u64>), Error> {
        let (id, node_hex) = (&node_id[..], hex::encode(node_id));
        self.write(async |txn| {
            let webhooks: Vec<u64> = txn
                .query(
                    "SELECT id FROM webhooks WHERE node_id = $1 ORDER BY id",
                    &[&id],
                )
                .await?
                .iter()
                .map(|r| small(r.get(0)))
                .collect();
            let mut number = last_given(txn, LAST_DELIVERY_KEY).await?;
            let mut new = 0;
            for event in events {
                let record = to_json(&edits::new_event(event, webhooks.len()))?;
                let added = txn
                    .execute(
                        "INSERT INTO webhook_events (node_id, event_id, record) VALUES ($1, $2, $3)
                         ON CONFLICT DO NOTHING",
                        &[&id, &event.event_id, &record],
                    )
                    .await?;
                if added == 0 {
                    continue;
                }
                new += 1;
                let delivery = to_json(&edits::new_delivery(&node_hex, event))?;
                for &webhook in &webhooks {
                    number += 1;
                    enqueue(txn, (webhook, now_ms, number), &delivery).await?;
                }
            }
            set_given(txn, LAST_DELIVERY_KEY, number).await?;
            // Every webhook got a delivery if any event was new.
            let poked = if new > 0 { webhooks } else { Vec::new() };
            Ok((new, poked))
        })
    }

    fn has_event(&self, node_id: &[u8; 33], event_id: &str) -> Result<bool, Error> {
        let id = &node_id[..];
        self.read(async |txn| {
            let row = txn
                .query_opt(
                    "SELECT 1 FROM webhook_events WHERE node_id = $1 AND event_id = $2",
                    &[&id, &event_id],
                )
                .await?;
            Ok(row.is_some())
        })
    }

    fn due_deliveries(
        &self,
        webhook: u64,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<(DeliveryKey, DeliveryRecord)>, Error> {
        self.read(async |txn| {
            let rows = txn
                .query(
                    "SELECT webhook, due_ms, number, record FROM webhook_deliveries
                     WHERE webhook = $1 AND due_ms <= $2
                     ORDER BY due_ms, number LIMIT $3",
                    &[&big(webhook), &big(now_ms), &big(limit as u64)],
                )
                .await?;
            deliveries(rows)
        })
    }

    fn next_due(&self, webhook: u64) -> Result<Option<u64>, Error> {
        self.read(async |txn| {
            let row = txn
                .query_opt(
                    "SELECT min(due_ms) FROM webhook_deliveries WHERE webhook = $1",
                    &[&big(webhook)],
                )
                .await?;
            Ok(row.and_then(|r| r.get::<_, Option<i64>>(0)).map(small))
        })
    }

    fn pending_deliveries(
        &self,
        limit: usize,
    ) -> Result<Vec<(DeliveryKey, DeliveryRecord)>, Error> {
        self.read(async |txn| {
            let rows = txn
                .query(
                    "SELECT webhook, due_ms, number, record FROM webhook_deliveries
                     ORDER BY due_ms, number LIMIT $1",
                    &[&big(limit as u64)],
                )
                .await?;
            deliveries(rows)
        })
    }

    fn queued_deliveries(&self) -> Result<u64, Error> {
        self.read(async |txn| {
            let n: i64 = txn
                .query_one("SELECT count(*) FROM webhook_deliveries", &[])
                .await?
                .get(0);
            Ok(small(n))
        })
    }

    fn delivery_attempted(
        &self,
        key: DeliveryKey,
        record: &DeliveryRecord,
        again_at: Option<u64>,
    ) -> Result<(), Error> {
        let record = to_json(record)?;
        self.write(async |txn| {
            if let (true, Some(due)) = (dequeue(txn, key).await?, again_at) {
                enqueue(txn, (key.0, due, key.2), &record).await?;
            }
            Ok(())
        })
    }

    fn delivery_failed(
        &self,
        key: DeliveryKey,
        record: &DeliveryRecord,
        uri: &str,
    ) -> Result<(), Error> {
        let failed = to_json(&edits::given_up(key.0, uri, record))?;
        self.write(async |txn| {
            if dequeue(txn, key).await? {
                txn.execute(
                    "INSERT INTO webhook_failed_deliveries (number, record) VALUES ($1, $2)
                     ON CONFLICT (number) DO UPDATE SET record = excluded.record",
                    &[&big(key.2), &failed],
                )
                .await?;
            }
            Ok(())
        })
    }

    fn failed_deliveries(&self) -> Result<Vec<FailedDeliveryRecord>, Error> {
        self.read(async |txn| {
            let rows = txn
                .query(
                    "SELECT record FROM webhook_failed_deliveries ORDER BY number",
                    &[],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(from_json(row.get(0))?);
            }
            Ok(out)
        })
    }
}
