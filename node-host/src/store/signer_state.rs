//! The signer's state, as node-host keeps it: a versioned key/value map.
//!
//! A signer wraps each request as enter → handle → prepare and returns the entries it
//! changed. node-host merges them here, durably, *before* the answer is released to the
//! node: a node must never act on a signature whose state it could lose, or the signer
//! could later be shown an older state and sign something that contradicts it.
//!
//! Merge rule (Greenlight's): per key, the higher version wins; an equal version with the
//! same value may add a signature; a lower version is ignored and counted as a conflict. A
//! tombstone (version `u64::MAX`) deletes the key for good.

use std::collections::BTreeMap;
use std::sync::Arc;

use skylight_proto::greenlight::SignerStateEntry;

use super::kv::{Batch, Durability, NodeKv};
use super::schema::{PINNED_KEY, SIGNER_ENTRIES as ENTRIES, SIGNER_KEY};

/// The version that marks a deleted key.
pub const TOMBSTONE: u64 = u64::MAX;

/// One entry of the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Strictly increasing per key.
    pub version: u64,
    /// The value (canonical JSON for VLS state).
    pub value: Vec<u8>,
    /// The signer's signature over the entry, if it signs its state.
    pub signature: Vec<u8>,
}

/// The tenant's state key as pinned, with the node key's attestation of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedKey {
    /// The state key (33 bytes).
    pub key: Vec<u8>,
    /// The node key's signature over it (64 bytes).
    pub attestation: Vec<u8>,
}

/// What a merge did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MergeReport {
    /// Entries written (new or newer).
    pub applied: usize,
    /// Entries older than what is stored, or another value at the stored version: ignored.
    pub conflicts: usize,
    /// The keys of those entries.
    pub conflicting_keys: Vec<String>,
}

/// A storage failure: the answer that carried the state must not be released.
#[derive(Debug, thiserror::Error)]
#[error("signer state storage: {0}")]
pub struct StateError(String);

impl StateError {
    /// What was stored is damaged.
    pub fn damaged(what: &str) -> Self {
        StateError(format!("{what} is damaged"))
    }
}

fn err(e: impl std::fmt::Display) -> StateError {
    StateError(e.to_string())
}

/// The state, in memory and in the node's store.
pub struct SignerState {
    kv: Arc<dyn NodeKv>,
    entries: std::sync::Mutex<BTreeMap<String, Entry>>,
}

impl SignerState {
    /// Reads the state from the node's store.
    pub fn open(kv: Arc<dyn NodeKv>) -> Result<Self, StateError> {
        let mut entries = BTreeMap::new();
        for (k, v) in kv.scan(ENTRIES.primary, ENTRIES.secondary).map_err(err)? {
            entries.insert(k, decode(&v)?);
        }
        Ok(SignerState {
            kv,
            entries: std::sync::Mutex::new(entries),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every live entry (tombstones left out).
    #[cfg(any(test, feature = "testing"))]
    pub fn snapshot(&self) -> Vec<SignerStateEntry> {
        self.lock()
            .iter()
            .filter(|(_, e)| e.version != TOMBSTONE)
            .map(|(k, e)| wire(k, e))
            .collect()
    }

    /// The pinned state key and its attestation, if one was pinned.
    pub fn pinned_key(&self) -> Result<Option<PinnedKey>, StateError> {
        let Some(raw) = self
            .kv
            .read(SIGNER_KEY.primary, SIGNER_KEY.secondary, PINNED_KEY)
            .map_err(err)?
        else {
            return Ok(None);
        };
        if raw.len() != 33 + 64 {
            return Err(StateError("damaged pinned state key".into()));
        }
        Ok(Some(PinnedKey {
            key: raw[..33].to_vec(),
            attestation: raw[33..].to_vec(),
        }))
    }

    /// Pins the state key (33 bytes) with its attestation (64 bytes), durably.
    pub fn pin_key(&self, key: &[u8], attestation: &[u8]) -> Result<(), StateError> {
        self.kv
            .write(
                SIGNER_KEY.primary,
                SIGNER_KEY.secondary,
                PINNED_KEY,
                &[key, attestation].concat(),
            )
            .map_err(err)
    }

    /// Entries newer than what `sent` says a signer already has; updates `sent`.
    pub fn changes_since(&self, sent: &mut BTreeMap<String, u64>) -> Vec<SignerStateEntry> {
        let entries = self.lock();
        let mut out = Vec::new();
        for (k, e) in entries.iter() {
            if e.version == TOMBSTONE || sent.get(k).is_some_and(|v| *v >= e.version) {
                continue;
            }
            sent.insert(k.clone(), e.version);
            out.push(wire(k, e));
        }
        out
    }

    /// The entry under `key`.
    #[cfg(any(test, feature = "testing"))]
    pub fn get(&self, key: &str) -> Option<Entry> {
        self.lock().get(key).cloned()
    }

    /// Merges a signer's changes, durably before returning.
    pub fn merge(&self, incoming: &[SignerStateEntry]) -> Result<MergeReport, StateError> {
        let mut entries = self.lock();
        let mut report = MergeReport::default();
        let mut writes: Vec<(String, Entry)> = Vec::new();
        for e in incoming {
            let new = Entry {
                version: e.version,
                value: e.value.clone(),
                signature: e.signature.clone(),
            };
            match entries.get(&e.key) {
                Some(old) if old.version == TOMBSTONE || old.version > new.version => {
                    report.conflicts += 1;
                    report.conflicting_keys.push(e.key.clone());
                }
                Some(old) if old.version == new.version => {
                    if old.value != new.value {
                        // Same version, different value: two histories. Keep ours.
                        report.conflicts += 1;
                        report.conflicting_keys.push(e.key.clone());
                    } else if old.signature.is_empty() && !new.signature.is_empty() {
                        writes.push((e.key.clone(), new));
                    }
                }
                _ => writes.push((e.key.clone(), new)),
            }
        }
        if writes.is_empty() {
            return Ok(report);
        }
        let mut batch = Batch::new(&*self.kv);
        for (k, e) in &writes {
            batch.put(ENTRIES, k, encode(e));
        }
        batch.commit(Durability::Immediate).map_err(err)?;
        // Only after the commit: memory never runs ahead of the disk.
        report.applied = writes.len();
        for (k, e) in writes {
            entries.insert(k, e);
        }
        Ok(report)
    }
}

fn wire(key: &str, e: &Entry) -> SignerStateEntry {
    SignerStateEntry {
        version: e.version,
        key: key.to_string(),
        value: e.value.clone(),
        signature: e.signature.clone(),
    }
}

fn encode(e: &Entry) -> Vec<u8> {
    let mut v = Vec::with_capacity(10 + e.signature.len() + e.value.len());
    v.extend_from_slice(&e.version.to_be_bytes());
    v.extend_from_slice(&(e.signature.len() as u16).to_be_bytes());
    v.extend_from_slice(&e.signature);
    v.extend_from_slice(&e.value);
    v
}

fn decode(raw: &[u8]) -> Result<Entry, StateError> {
    let damaged = || StateError("damaged signer state entry".into());
    let version = u64::from_be_bytes(
        raw.get(..8)
            .ok_or_else(damaged)?
            .try_into()
            .map_err(|_| damaged())?,
    );
    let sig_len = u16::from_be_bytes(
        raw.get(8..10)
            .ok_or_else(damaged)?
            .try_into()
            .map_err(|_| damaged())?,
    ) as usize;
    let signature = raw.get(10..10 + sig_len).ok_or_else(damaged)?.to_vec();
    let value = raw.get(10 + sig_len..).ok_or_else(damaged)?.to_vec();
    Ok(Entry {
        version,
        value,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kv::redb::RedbKv;

    fn kv(dir: &tempfile::TempDir) -> Arc<dyn NodeKv> {
        Arc::new(RedbKv::open(&dir.path().join("ldk.redb")).unwrap())
    }

    fn e(key: &str, version: u64, value: &str) -> SignerStateEntry {
        SignerStateEntry {
            version,
            key: key.into(),
            value: value.as_bytes().to_vec(),
            signature: vec![],
        }
    }

    #[test]
    fn the_higher_version_wins_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SignerState::open(kv(&dir)).unwrap();
            let r = s
                .merge(&[e("nodes/a", 1, "one"), e("channels/x", 3, "three")])
                .unwrap();
            assert_eq!((r.applied, r.conflicts), (2, 0));
            let r = s
                .merge(&[e("nodes/a", 2, "two"), e("channels/x", 2, "stale")])
                .unwrap();
            assert_eq!((r.applied, r.conflicts), (1, 1));
            assert_eq!(r.conflicting_keys, ["channels/x"]);
            // Same version, other value: a second history is refused.
            let r = s.merge(&[e("nodes/a", 2, "fork")]).unwrap();
            assert_eq!(r.conflicts, 1);
        }
        let s = SignerState::open(kv(&dir)).unwrap();
        assert_eq!(s.get("nodes/a").unwrap().value, b"two");
        assert_eq!(s.get("channels/x").unwrap().version, 3);
    }

    #[test]
    fn a_tombstone_deletes_for_good_and_attach_sees_live_entries() {
        let dir = tempfile::tempdir().unwrap();
        let s = SignerState::open(kv(&dir)).unwrap();
        s.merge(&[e("channels/x", 5, "x"), e("nodes/a", 1, "a")])
            .unwrap();
        s.merge(&[e("channels/x", TOMBSTONE, "null")]).unwrap();
        assert_eq!(
            s.merge(&[e("channels/x", 6, "again")]).unwrap().conflicts,
            1
        );
        let keys: Vec<String> = s.snapshot().into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["nodes/a"]);
    }

    #[test]
    fn a_signature_can_be_added_to_an_equal_entry() {
        let dir = tempfile::tempdir().unwrap();
        let s = SignerState::open(kv(&dir)).unwrap();
        s.merge(&[e("nodes/a", 1, "a")]).unwrap();
        let mut signed = e("nodes/a", 1, "a");
        signed.signature = vec![7; 64];
        assert_eq!(s.merge(&[signed]).unwrap().applied, 1);
        assert_eq!(s.get("nodes/a").unwrap().signature, vec![7; 64]);
    }

    #[test]
    fn a_signer_is_sent_each_change_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = SignerState::open(kv(&dir)).unwrap();
        s.merge(&[e("a", 1, "1"), e("b", 1, "1")]).unwrap();
        let mut sent = BTreeMap::new();
        assert_eq!(s.changes_since(&mut sent).len(), 2);
        assert!(s.changes_since(&mut sent).is_empty());
        s.merge(&[e("b", 2, "2")]).unwrap();
        let changed: Vec<String> = s
            .changes_since(&mut sent)
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(changed, ["b"]);
    }
}
