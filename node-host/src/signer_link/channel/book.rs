//! What node-host knows of each channel's signer, durable and shared by every signer
//! instance LDK derives for a channel (the channel manager's, the monitor's, and both again
//! after a restart).
//!
//! Upstream's client kept "this channel is set up on the signer" in each instance's memory:
//! a restarted node believed no channel was set up and "validated" a retransmitted holder
//! commitment without asking the signer, then asked for a point the signer could not give
//! yet (channel-signer.md §1). Here that knowledge lives in one record per channel, written
//! before it is relied on:
//!
//! - the channel's basepoints (so deriving a known channel's signer needs no signer);
//! - the `SetupChannel` message, once sent, replayed byte for byte if ever needed again;
//! - per-commitment points the signer gave, and commitment secrets it released, so the
//!   calls LDK cannot wait for (a reestablish with no signer attached) are served here;
//! - holder-commitment validations LDK was told are done but the signer has not answered
//!   yet, in order: they are sent (again, after a restart) before anything else for the
//!   channel.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::store::kv::{Durability, NodeKv, number_key};
use crate::store::schema::CHANNEL_RECORDS;

/// How many points and secrets a record keeps (the newest): LDK asks only for the current,
/// next and pending points, and a reestablish for one just before them.
const KEPT: usize = 8;
/// One cache change in this many is written durably (see [`ChannelBook::note`]).
const LAZY_EVERY: u32 = 32;

/// One channel's record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRecord {
    /// LDK's serialisation of the channel's `ChannelPublicKeys`, hex.
    pub basepoints: String,
    /// The `SetupChannel` message sent to the signer, hex; `None` until it is.
    #[serde(default)]
    pub setup: Option<String>,
    /// Per-commitment points by VLS commitment number, compressed, hex.
    #[serde(default)]
    pub points: BTreeMap<u64, String>,
    /// Released commitment secrets by VLS commitment number, hex.
    #[serde(default)]
    pub secrets: BTreeMap<u64, String>,
    /// `ValidateCommitmentTx2` messages LDK took as done that the signer has not answered,
    /// oldest first, hex.
    #[serde(default)]
    pub unanswered_validations: Vec<String>,
}

impl ChannelRecord {
    /// Keeps `point` for commitment `n`, dropping the oldest beyond the 8 newest.
    pub fn keep_point(&mut self, n: u64, point: &[u8]) {
        self.points.insert(n, hex::encode(point));
        while self.points.len() > KEPT {
            self.points.pop_first();
        }
    }

    /// Keeps the secret of commitment `n`, dropping the oldest beyond the 8 newest.
    pub fn keep_secret(&mut self, n: u64, secret: &[u8; 32]) {
        self.secrets.insert(n, hex::encode(secret));
        while self.secrets.len() > KEPT {
            self.secrets.pop_first();
        }
    }

    /// The point of commitment `n`, if kept.
    pub fn point(&self, n: u64) -> Option<Vec<u8>> {
        self.points.get(&n).and_then(|h| hex::decode(h).ok())
    }

    /// The secret of commitment `n`, if kept.
    pub fn secret(&self, n: u64) -> Option<[u8; 32]> {
        let bytes = hex::decode(self.secrets.get(&n)?).ok()?;
        bytes.try_into().ok()
    }

    /// The newest commitment number with a kept point.
    #[cfg(test)]
    pub fn newest_point(&self) -> Option<u64> {
        self.points.keys().next_back().copied()
    }
}

/// A record could not be read or written: whatever relied on it must not go ahead.
#[derive(Debug, thiserror::Error)]
#[error("channel signer records: {0}")]
pub struct BookError(String);

impl BookError {
    /// An error saying `text`.
    pub fn new(text: impl Into<String>) -> Self {
        BookError(text.into())
    }
}

fn err(e: impl std::fmt::Display) -> BookError {
    BookError(e.to_string())
}

/// Every channel's record, in memory and in the node's store.
pub struct ChannelBook {
    kv: Arc<dyn NodeKv>,
    records: Mutex<HashMap<u64, ChannelRecord>>,
    /// Cache changes so far (see [`ChannelBook::note`]).
    lazy: AtomicU32,
}

impl ChannelBook {
    /// Reads every record from the node's store.
    pub fn open(kv: Arc<dyn NodeKv>) -> Result<Self, BookError> {
        let mut records = HashMap::new();
        let rows = kv
            .scan(CHANNEL_RECORDS.primary, CHANNEL_RECORDS.secondary)
            .map_err(err)?;
        for (k, v) in rows {
            let dbid: u64 = k
                .parse()
                .map_err(|_| BookError(format!("a channel record is keyed {k:?}")))?;
            let record: ChannelRecord = serde_json::from_slice(&v).map_err(|e| {
                BookError(format!("the record of channel {dbid} is damaged: {e}"))
            })?;
            records.insert(dbid, record);
        }
        Ok(ChannelBook {
            kv,
            records: Mutex::new(records),
            lazy: AtomicU32::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, ChannelRecord>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of channel `dbid`'s record.
    pub fn get(&self, dbid: u64) -> Option<ChannelRecord> {
        self.lock().get(&dbid).cloned()
    }

    /// Creates channel `dbid`'s record with `record`, unless it has one (kept as it is).
    pub fn create(&self, dbid: u64, record: ChannelRecord) -> Result<ChannelRecord, BookError> {
        let mut records = self.lock();
        if let Some(r) = records.get(&dbid) {
            return Ok(r.clone());
        }
        self.write(dbid, &record, Durability::Immediate)?;
        records.insert(dbid, record.clone());
        Ok(record)
    }

    /// Changes channel `dbid`'s record with `change`, durably before this returns; nothing
    /// is written when `change` leaves it as it was. Returns the record as now stored.
    pub fn update(
        &self,
        dbid: u64,
        change: impl FnOnce(&mut ChannelRecord),
    ) -> Result<ChannelRecord, BookError> {
        self.change(dbid, change, Durability::Immediate)
    }

    /// Changes only what the signer can tell again (points, secrets): written at once but
    /// made durable only with the next durable write, or every 32nd (`LAZY_EVERY`) such
    /// change. A crash may lose the last few; the signer is then asked for them again. This
    /// keeps a disk flush off the path of each commitment.
    pub fn note(
        &self,
        dbid: u64,
        change: impl FnOnce(&mut ChannelRecord),
    ) -> Result<ChannelRecord, BookError> {
        // redb reclaims the pages of non-durable commits only at a durable one: one now and
        // then bounds the file.
        let n = self.lazy.fetch_add(1, Ordering::Relaxed);
        let durability = if n % LAZY_EVERY == LAZY_EVERY - 1 {
            Durability::Immediate
        } else {
            Durability::Eventual
        };
        self.change(dbid, change, durability)
    }

    fn change(
        &self,
        dbid: u64,
        change: impl FnOnce(&mut ChannelRecord),
        durability: Durability,
    ) -> Result<ChannelRecord, BookError> {
        let mut records = self.lock();
        let Some(current) = records.get(&dbid) else {
            return Err(BookError(format!("channel {dbid} has no record")));
        };
        let mut next = current.clone();
        change(&mut next);
        if &next != current {
            self.write(dbid, &next, durability)?;
            records.insert(dbid, next.clone());
        }
        Ok(next)
    }

    fn write(
        &self,
        dbid: u64,
        record: &ChannelRecord,
        durability: Durability,
    ) -> Result<(), BookError> {
        let change = crate::store::kv::Change {
            primary: CHANNEL_RECORDS.primary.into(),
            secondary: CHANNEL_RECORDS.secondary.into(),
            key: number_key(dbid),
            value: Some(serde_json::to_vec(record).map_err(err)?),
        };
        self.kv.commit(vec![change], durability).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kv::redb::RedbKv;

    fn open(path: &std::path::Path) -> ChannelBook {
        ChannelBook::open(Arc::new(RedbKv::open(path).unwrap())).unwrap()
    }

    fn record() -> ChannelRecord {
        ChannelRecord {
            basepoints: "00".into(),
            ..Default::default()
        }
    }

    #[test]
    fn noted_points_are_served_at_once_and_on_disk_by_the_periodic_durable_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.redb");
        {
            let book = open(&path);
            book.create(3, record()).unwrap();
            for n in 0..u64::from(LAZY_EVERY) {
                book.note(3, |r| r.keep_point(n, &[n as u8; 33])).unwrap();
                assert_eq!(book.get(3).unwrap().point(n), Some(vec![n as u8; 33]));
            }
        }
        let last = u64::from(LAZY_EVERY) - 1;
        let book = open(&path);
        assert_eq!(book.get(3).unwrap().point(last), Some(vec![last as u8; 33]));
    }

    #[test]
    fn a_record_survives_reopening_with_its_points_secrets_and_validations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.redb");
        {
            let book = open(&path);
            book.create(3, record()).unwrap();
            book.update(3, |r| {
                r.setup = Some("ab".into());
                r.keep_point(5, &[2; 33]);
                r.keep_secret(4, &[9; 32]);
                r.unanswered_validations.push("cd".into());
            })
            .unwrap();
        }
        let book = open(&path);
        let r = book.get(3).unwrap();
        assert_eq!(r.setup.as_deref(), Some("ab"));
        assert_eq!(r.point(5), Some(vec![2; 33]));
        assert_eq!(r.secret(4), Some([9; 32]));
        assert_eq!(r.unanswered_validations, vec!["cd".to_string()]);
        assert!(book.get(4).is_none());
    }

    #[test]
    fn only_the_newest_points_are_kept() {
        let mut r = record();
        for n in 0..20 {
            r.keep_point(n, &[n as u8; 33]);
        }
        assert_eq!(r.points.len(), KEPT);
        assert_eq!(r.newest_point(), Some(19));
        assert!(r.point(11).is_none());
        assert!(r.point(12).is_some());
    }

    #[test]
    fn creating_a_record_twice_keeps_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let book = open(&dir.path().join("c.redb"));
        book.create(1, record()).unwrap();
        book.update(1, |r| r.setup = Some("01".into())).unwrap();
        let again = book.create(1, record()).unwrap();
        assert_eq!(again.setup.as_deref(), Some("01"));
    }

    #[test]
    fn updating_a_channel_without_a_record_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let book = open(&dir.path().join("c.redb"));
        assert!(book.update(9, |_| {}).is_err());
    }
}
