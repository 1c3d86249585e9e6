//! The outbox: events the node raised (a payment received, a signer needed, the chain
//! stuck), kept durably until the scheduler says it stored them. An event is in the outbox
//! before the LDK event that caused it is handled, so a kill at any point loses none;
//! events raised once per cause (a payment's) keep their id across replays, so the
//! scheduler and receivers see one event, however often it is handed over.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::kv::{Batch, Durability, NodeKv, counter, number_key};
use super::schema::{COUNTERS, OUTBOX, OUTBOX_RAISED as RAISED, OUTBOX_SEQ};

/// An event in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// Its place in the outbox.
    pub seq: u64,
    /// Its id, for ever.
    pub event_id: String,
    /// `invoice_payment`, `signer_needed`, `node_stuck`.
    pub event_type: String,
    /// Unix seconds when it was raised.
    pub timestamp: u64,
    /// Its own fields, a JSON object.
    pub fields: serde_json::Value,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[error("outbox storage: {0}")]
pub struct OutboxError(String);

fn err(e: impl std::fmt::Display) -> OutboxError {
    OutboxError(e.to_string())
}

/// The outbox.
pub struct Outbox {
    kv: Arc<dyn NodeKv>,
    /// Held across each read-and-write (a once-key checked, the sequence raised).
    writing: Mutex<()>,
    /// The last sequence number raised, for whoever hands events over.
    raised: watch::Sender<u64>,
}

/// The id of the event numbered `seq`: milliseconds since the epoch and the low 22 bits
/// of its number, in decimal (a snowflake, as Greenlight's are): ordered by time, and
/// distinct, since no two events share a number and four million never share a
/// millisecond.
fn id_of(seq: u64) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    ((ms << 22) | (seq & 0x3f_ffff)).to_string()
}

impl Outbox {
    /// The outbox in the node's store.
    pub fn open(kv: Arc<dyn NodeKv>) -> Result<Self, OutboxError> {
        let last = counter(
            kv.read(COUNTERS.primary, COUNTERS.secondary, OUTBOX_SEQ)
                .map_err(err)?
                .as_deref(),
        )
        .map_err(err)?;
        Ok(Outbox {
            kv,
            writing: Mutex::default(),
            raised: watch::channel(last).0,
        })
    }

    /// Raises an event, durably. With `once`, an event raised before under the same key is
    /// not raised again (`None`); otherwise its id.
    pub fn raise(
        &self,
        once: Option<&str>,
        event_type: &str,
        fields: serde_json::Value,
    ) -> Result<Option<String>, OutboxError> {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let mut batch = Batch::new(&*self.kv);
        if let Some(key) = once
            && batch.get(RAISED, key).map_err(err)?.is_some()
        {
            return Ok(None);
        }
        let seq = batch.next(COUNTERS, OUTBOX_SEQ).map_err(err)?;
        let event_id = id_of(seq);
        if let Some(key) = once {
            batch.put(RAISED, key, event_id.clone().into_bytes());
        }
        let event = OutboxEvent {
            seq,
            event_id: event_id.clone(),
            event_type: event_type.to_string(),
            timestamp: crate::now_secs(),
            fields,
        };
        batch.put(
            OUTBOX,
            &number_key(seq),
            serde_json::to_vec(&event).map_err(err)?,
        );
        batch.commit(Durability::Immediate).map_err(err)?;
        self.raised.send_replace(seq);
        tracing::info!(event_type, %event_id, "event raised");
        Ok(Some(event_id))
    }

    /// Up to `limit` events still in the outbox, oldest first.
    pub fn pending(&self, limit: usize) -> Result<Vec<OutboxEvent>, OutboxError> {
        let rows = self.kv.scan(OUTBOX.primary, OUTBOX.secondary).map_err(err)?;
        rows.iter()
            .take(limit)
            .map(|(_, v)| serde_json::from_slice(v).map_err(err))
            .collect()
    }

    /// How many events are in the outbox.
    #[cfg(any(test, feature = "testing"))]
    pub fn len(&self) -> Result<u64, OutboxError> {
        let keys = self.kv.list(OUTBOX.primary, OUTBOX.secondary).map_err(err)?;
        Ok(keys.len() as u64)
    }

    /// Whether the outbox is empty.
    #[cfg(any(test, feature = "testing"))]
    pub fn is_empty(&self) -> Result<bool, OutboxError> {
        Ok(self.len()? == 0)
    }

    /// Forgets the events up to and including `through`: the scheduler stored them.
    pub fn stored(&self, through: u64) -> Result<(), OutboxError> {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let keys = self.kv.list(OUTBOX.primary, OUTBOX.secondary).map_err(err)?;
        let mut batch = Batch::new(&*self.kv);
        for key in keys.iter().take_while(|k| k.as_str() <= number_key(through).as_str()) {
            batch.delete(OUTBOX, key);
        }
        batch.commit(Durability::Immediate).map_err(err)
    }

    /// The last sequence number raised, as it changes.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.raised.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kv::redb::RedbKv;

    #[test]
    fn events_stay_until_stored_and_a_once_event_is_raised_once_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ldk.redb");
        let outbox = Outbox::open(Arc::new(RedbKv::open(&path).unwrap())).unwrap();
        let fields = serde_json::json!({"payment_hash": "ab"});
        let id = outbox
            .raise(Some("invoice_payment:ab"), "invoice_payment", fields.clone())
            .unwrap()
            .unwrap();
        outbox
            .raise(None, "signer_needed", serde_json::json!({}))
            .unwrap();
        assert_eq!(outbox.len().unwrap(), 2);
        let pending = outbox.pending(10).unwrap();
        assert_eq!(pending[0].event_id, id);
        assert_eq!(pending[0].fields, fields);
        assert_eq!((pending[0].seq, pending[1].seq), (1, 2));
        outbox.stored(1).unwrap();
        assert_eq!(outbox.pending(10).unwrap()[0].event_type, "signer_needed");
        drop(outbox);

        // Reopened (a restart): the second is still there, numbering goes on, and the
        // payment's event replayed by LDK raises nothing new.
        let outbox = Outbox::open(Arc::new(RedbKv::open(&path).unwrap())).unwrap();
        assert_eq!(*outbox.watch().borrow(), 2);
        assert_eq!(outbox.len().unwrap(), 1);
        assert_eq!(
            outbox
                .raise(Some("invoice_payment:ab"), "invoice_payment", fields)
                .unwrap(),
            None
        );
        let next = outbox.raise(None, "node_stuck", serde_json::json!({})).unwrap();
        assert!(next.is_some());
        assert_eq!(outbox.pending(10).unwrap()[1].seq, 3);
        outbox.stored(3).unwrap();
        assert!(outbox.is_empty().unwrap());
    }

    #[test]
    fn event_ids_are_distinct_within_a_millisecond_and_grow_with_time() {
        let ids: Vec<u64> = (1..=1000).map(|s| id_of(s).parse().unwrap()).collect();
        let mut distinct = ids.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), ids.len());
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later: u64 = id_of(1).parse().unwrap();
        assert!(later > ids[0]);
    }
}
