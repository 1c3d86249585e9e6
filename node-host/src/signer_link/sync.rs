//! The signer's state between node-host and its signers: what each attached stream's
//! signer already has, and what an answer may change.
//!
//! A signing request carries only what its signer lacks (everything, the first time). An
//! answer's changes are merged durably before the answer may be released; a change that
//! conflicts with what node-host holds means the answer was computed from another state,
//! and it is refused. Entries the answering device sent are never echoed back to it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use skylight_proto::greenlight::SignerStateEntry;

use crate::store::signer_state::{SignerState, StateError};

/// The key of VLS's last-writer record in the state: the signer's own bookkeeping (which
/// device wrote last), where a conflict means nothing.
const WRITER_KEY: &str = "_WRITER";

/// Versions a stream's signer has: sent to it, or received from its device.
type Known = Arc<Mutex<BTreeMap<String, u64>>>;

/// Why an answer's state was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The store failed: the answer must stay unanswered.
    #[error(transparent)]
    Storage(#[from] StateError),
    /// The answer changes entries from a version node-host does not hold.
    #[error("the answer's state conflicts with the node's ({} entries)", .0.len())]
    Conflict(Vec<String>),
}

/// The state and the attached streams.
pub struct StateSync {
    state: Arc<SignerState>,
    /// By session: the stream's device and what its signer has.
    streams: Mutex<HashMap<u64, (String, Known)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl StateSync {
    /// Syncs `state` with signers.
    pub fn new(state: Arc<SignerState>) -> Self {
        StateSync {
            state,
            streams: Mutex::default(),
        }
    }

    /// A stream of `device` attached as `session`: its signer has nothing yet.
    pub fn attach(&self, session: u64, device: &str) {
        lock(&self.streams).insert(session, (device.to_string(), Known::default()));
    }

    /// The stream `session` ended.
    pub fn detach(&self, session: u64) {
        lock(&self.streams).remove(&session);
    }

    /// What the signer on `session` lacks; from now on it counts as having it.
    pub fn outgoing(&self, session: u64) -> Vec<SignerStateEntry> {
        let Some(known) = lock(&self.streams).get(&session).map(|(_, k)| k.clone()) else {
            return Vec::new();
        };
        self.state.changes_since(&mut lock(&known))
    }

    /// Takes an answer's state changes from `device`: stored durably before this returns,
    /// or refused.
    pub fn incoming(&self, device: &str, entries: &[SignerStateEntry]) -> Result<(), SyncError> {
        if entries.is_empty() {
            return Ok(());
        }
        let report = self.state.merge(entries)?;
        let conflicts: Vec<String> = report
            .conflicting_keys
            .into_iter()
            .filter(|k| k != WRITER_KEY)
            .collect();
        if !conflicts.is_empty() {
            return Err(SyncError::Conflict(conflicts));
        }
        // Only when the device has one stream: with two, which one answered is unknown, and
        // the other would miss the entries.
        let streams = lock(&self.streams);
        let of_device: Vec<&Known> = streams
            .values()
            .filter(|(d, _)| d == device)
            .map(|(_, k)| k)
            .collect();
        if let [known] = of_device.as_slice() {
            let mut known = lock(known);
            for e in entries {
                let v = known.entry(e.key.clone()).or_default();
                *v = (*v).max(e.version);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, version: u64) -> SignerStateEntry {
        SignerStateEntry {
            version,
            key: key.into(),
            value: b"v".to_vec(),
            signature: vec![],
        }
    }

    fn sync() -> (tempfile::TempDir, StateSync) {
        let dir = tempfile::tempdir().unwrap();
        let kv = crate::store::kv::redb::RedbKv::shared(&dir.path().join("s.redb")).unwrap();
        let state = SignerState::open(kv).unwrap();
        (dir, StateSync::new(Arc::new(state)))
    }

    #[test]
    fn a_device_with_one_stream_is_not_sent_back_what_it_sent() {
        let (_dir, sync) = sync();
        sync.attach(1, "phone");
        sync.attach(2, "laptop");
        sync.incoming("phone", &[entry("channels/a", 1)]).unwrap();
        assert!(sync.outgoing(1).is_empty(), "the phone has it");
        assert_eq!(sync.outgoing(2).len(), 1, "the laptop does not");
    }

    #[test]
    fn a_device_with_two_streams_gets_its_entries_on_both() {
        let (_dir, sync) = sync();
        sync.attach(1, "phone");
        sync.attach(2, "phone");
        sync.incoming("phone", &[entry("channels/a", 1)]).unwrap();
        assert_eq!(sync.outgoing(1).len(), 1);
        assert_eq!(sync.outgoing(2).len(), 1);
    }

    #[test]
    fn an_older_version_conflicts_but_the_writer_record_does_not() {
        let (_dir, sync) = sync();
        sync.incoming("phone", &[entry("channels/a", 5), entry(WRITER_KEY, 5)])
            .unwrap();
        sync.incoming("phone", &[entry(WRITER_KEY, 4)]).unwrap();
        match sync.incoming("phone", &[entry("channels/a", 4)]) {
            Err(SyncError::Conflict(keys)) => assert_eq!(keys, ["channels/a"]),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
}
