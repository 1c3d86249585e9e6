//! The signer's local copy of its state, shared by the per-request transactions.

use std::sync::Arc;

use lightning_signer::SendSync;
use lightning_signer::persist::{Error, SignerId};
use vls_persist::kvv::memory::{Iter, MemoryKVVStore};
use vls_persist::kvv::{KVV, KVVStore};

/// A handle on one local store: each request opens a fresh transactional view over it, so
/// a failed request is abandoned by dropping its view (VLS's store has no abort).
#[derive(Clone)]
pub struct SharedStore(pub Arc<MemoryKVVStore>);

impl SendSync for SharedStore {}

impl KVVStore for SharedStore {
    type Iter = Iter;

    fn put(&self, key: &str, value: Vec<u8>) -> Result<(), Error> {
        self.0.put(key, value)
    }
    fn put_with_version(&self, key: &str, version: u64, value: Vec<u8>) -> Result<(), Error> {
        self.0.put_with_version(key, version, value)
    }
    fn put_batch(&self, kvvs: Vec<KVV>) -> Result<(), Error> {
        self.0.put_batch(kvvs)
    }
    fn get(&self, key: &str) -> Result<Option<(u64, Vec<u8>)>, Error> {
        self.0.get(key)
    }
    fn get_version(&self, key: &str) -> Result<Option<u64>, Error> {
        self.0.get_version(key)
    }
    fn get_prefix(&self, prefix: &str) -> Result<Self::Iter, Error> {
        self.0.get_prefix(prefix)
    }
    fn delete(&self, key: &str) -> Result<(), Error> {
        self.0.delete(key)
    }
    fn clear_database(&self) -> Result<(), Error> {
        self.0.clear_database()
    }
    fn reset_versions(&self) -> Result<(), Error> {
        self.0.reset_versions()
    }
    fn signer_id(&self) -> SignerId {
        self.0.signer_id()
    }
}
