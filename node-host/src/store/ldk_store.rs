//! LDK's store — channel monitors, the channel manager, the graph, the scorer, the sweeper,
//! the wallet and peers' addresses — on the node's state backend ([`super::kv`]): redb in
//! the node directory by default, or PostgreSQL.
//!
//! Each write is durable before [`KVStoreSync::write`] returns, so a monitor update LDK is
//! told is persisted is stored; a write that fails (a PostgreSQL node-host whose lease was
//! taken over, say) is LDK's `UnrecoverableError`, which stops the node.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

// LDK's io types: std's with `std`, but named through LDK.
use lightning_signer::lightning::io;
use lightning_signer::lightning::util::persist::{self, KVStoreSync, MigratableKVStore};

use super::kv::NodeKv;

/// LDK's store.
pub struct LdkStore {
    kv: Arc<dyn NodeKv>,
}

impl LdkStore {
    /// The store in the redb database at `path`.
    #[cfg(any(test, feature = "testing"))]
    pub fn open(path: &std::path::Path) -> io::Result<Self> {
        Ok(Self::on(Arc::new(super::kv::redb::RedbKv::open(path)?)))
    }

    /// The store on `kv`.
    pub fn on(kv: Arc<dyn NodeKv>) -> Self {
        LdkStore { kv }
    }

    /// The node's state backend it is on (node-host keeps its own state there too).
    pub fn kv(&self) -> &Arc<dyn NodeKv> {
        &self.kv
    }
}

impl KVStoreSync for LdkStore {
    fn read(&self, primary: &str, secondary: &str, key: &str) -> io::Result<Vec<u8>> {
        self.kv.read(primary, secondary, key)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{primary}/{secondary}/{key} is not in the LDK store"),
            )
        })
    }

    fn write(&self, primary: &str, secondary: &str, key: &str, buf: Vec<u8>) -> io::Result<()> {
        self.kv.write(primary, secondary, key, &buf)
    }

    // `lazy` is not taken up: a removal is committed as a write is, in the same order.
    fn remove(&self, primary: &str, secondary: &str, key: &str, _lazy: bool) -> io::Result<()> {
        self.kv.remove(primary, secondary, key)
    }

    fn list(&self, primary: &str, secondary: &str) -> io::Result<Vec<String>> {
        self.kv.list(primary, secondary)
    }
}

/// What LDK's asynchronous store answers.
type Answer<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'static>>;

fn ready<T: Send + 'static>(result: io::Result<T>) -> Answer<T> {
    Box::pin(std::future::ready(result))
}

/// The asynchronous face LDK's output sweeper uses. Each call is done before it returns
/// (a commit is a fraction of a millisecond locally, a round trip to PostgreSQL), so
/// writes to a key complete in the order they were made, as LDK requires.
impl persist::KVStore for LdkStore {
    fn read(&self, primary: &str, secondary: &str, key: &str) -> Answer<Vec<u8>> {
        ready(KVStoreSync::read(self, primary, secondary, key))
    }

    fn write(&self, primary: &str, secondary: &str, key: &str, buf: Vec<u8>) -> Answer<()> {
        ready(KVStoreSync::write(self, primary, secondary, key, buf))
    }

    fn remove(&self, primary: &str, secondary: &str, key: &str, lazy: bool) -> Answer<()> {
        ready(KVStoreSync::remove(self, primary, secondary, key, lazy))
    }

    fn list(&self, primary: &str, secondary: &str) -> Answer<Vec<String>> {
        ready(KVStoreSync::list(self, primary, secondary))
    }
}

impl MigratableKVStore for LdkStore {
    fn list_all_keys(&self) -> io::Result<Vec<(String, String, String)>> {
        self.kv.list_all()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// What every backend must do, as LDK sees it.
    pub(crate) fn keys_are_read_listed_and_removed_within_their_namespaces(store: &LdkStore) {
        store.write("monitors", "", "a", b"1".to_vec()).unwrap();
        store.write("monitors", "", "b", b"2".to_vec()).unwrap();
        store.write("monitors", "", "B", b"2".to_vec()).unwrap();
        store.write("monitors", "x", "c", b"3".to_vec()).unwrap();
        store.write("monitorsz", "", "d", b"4".to_vec()).unwrap();
        store.write("", "", "manager", b"m".to_vec()).unwrap();
        // Byte order, whatever the database's collation.
        assert_eq!(store.list("monitors", "").unwrap(), ["B", "a", "b"]);
        assert_eq!(store.list("monitors", "x").unwrap(), ["c"]);
        assert_eq!(store.list("", "").unwrap(), ["manager"]);
        assert!(store.list("none", "").unwrap().is_empty());
        store.write("monitors", "", "a", b"1 again".to_vec()).unwrap();
        assert_eq!(store.read("monitors", "", "a").unwrap(), b"1 again");
        store.remove("monitors", "", "a", true).unwrap();
        let gone = store.read("monitors", "", "a").unwrap_err();
        assert_eq!(gone.kind(), io::ErrorKind::NotFound);
        store.remove("monitors", "", "never there", false).unwrap();
        assert_eq!(
            store.list_all_keys().unwrap(),
            [
                ("".into(), "".into(), "manager".into()),
                ("monitors".into(), "".into(), "B".into()),
                ("monitors".into(), "".into(), "b".into()),
                ("monitors".into(), "x".into(), "c".into()),
                ("monitorsz".into(), "".into(), "d".into()),
            ]
        );
    }

    #[test]
    fn keys_are_read_listed_and_removed_within_their_namespaces_in_redb() {
        let dir = tempfile::tempdir().unwrap();
        let store = LdkStore::open(&dir.path().join("ldk.redb")).unwrap();
        keys_are_read_listed_and_removed_within_their_namespaces(&store);
    }
}
