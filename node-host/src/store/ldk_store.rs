//! LDK's store — channel monitors, the channel manager, the graph, the scorer, the sweeper,
//! the wallet and peers' addresses — in one redb database (`ldk.redb`).
//!
//! Why not LDK's file store: each of its writes is a file written and synced, renamed, and
//! its directory synced, and a payment makes about a dozen of them on each side (monitor
//! updates, manager persists) on its critical path. A redb commit is one `fdatasync`.
//! Each write is its own transaction, committed before [`KVStoreSync::write`] returns, so a
//! monitor update LDK is told is persisted is on disk.
//!
//! A node directory from before keeps its state in `ldk/` (the file store): it is taken in
//! whole, in one transaction that also marks it taken in, checked back key by key, and only
//! then is `ldk/` removed (a stale copy of a node's state is a hazard, not a backup).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

// LDK's io types: std's with `std`, but named through LDK.
use lightning_signer::lightning::io;
use lightning_signer::lightning::util::persist::{self, KVStoreSync, MigratableKVStore};
use lightning_persister::fs_store::FilesystemStore;
use redb::{Database, ReadableDatabase, ReadableTable};

use super::schema::{self, LDK_FILES_MIGRATED_KEY, LDK_KV, META};
use crate::paths::NodeDir;

/// LDK's store in redb.
pub struct LdkStore {
    db: Database,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::Other, format!("LDK store: {e}"))
}

impl LdkStore {
    /// Opens (creating) the store of the node in `dir`, taking in an older `ldk/` file
    /// store first if there is one.
    pub fn open_node(dir: &NodeDir) -> io::Result<Self> {
        let store = Self::open(&dir.ldk_store())?;
        let files = dir.ldk();
        if files.exists() {
            if !store.files_taken_in()? {
                store.take_in(&FilesystemStore::new(files.clone()))?;
                tracing::info!(from = %files.display(), "LDK's file store taken into ldk.redb");
            }
            // ldk.redb holds the node now; the files would only be an older copy of it.
            std::fs::remove_dir_all(&files)?;
            skylight_client::files::sync_dir_of(&files)?;
        }
        Ok(store)
    }

    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> io::Result<Self> {
        let db = schema::open(path).map_err(other)?;
        let txn = db.begin_write().map_err(other)?;
        txn.open_table(LDK_KV).map_err(other)?;
        txn.commit().map_err(other)?;
        Ok(LdkStore { db })
    }

    fn files_taken_in(&self) -> io::Result<bool> {
        let txn = self.db.begin_read().map_err(other)?;
        let meta = txn.open_table(META).map_err(other)?;
        Ok(meta.get(LDK_FILES_MIGRATED_KEY).map_err(other)?.is_some())
    }

    /// Copies every key of `files` in, marked taken in by the same transaction, then reads
    /// each back against the files.
    fn take_in(&self, files: &FilesystemStore) -> io::Result<()> {
        let keys = files.list_all_keys()?;
        let txn = self.db.begin_write().map_err(other)?;
        {
            let mut table = txn.open_table(LDK_KV).map_err(other)?;
            for (p, s, k) in &keys {
                let value = files.read(p, s, k)?;
                table
                    .insert((p.as_str(), s.as_str(), k.as_str()), value.as_slice())
                    .map_err(other)?;
            }
            let mut meta = txn.open_table(META).map_err(other)?;
            meta.insert(LDK_FILES_MIGRATED_KEY, 1).map_err(other)?;
        }
        txn.commit().map_err(other)?;
        for (p, s, k) in &keys {
            if self.read(p, s, k)? != files.read(p, s, k)? {
                return Err(other(format!(
                    "{p}/{s}/{k} reads back other than the file it was taken from"
                )));
            }
        }
        Ok(())
    }
}

impl KVStoreSync for LdkStore {
    fn read(&self, primary: &str, secondary: &str, key: &str) -> io::Result<Vec<u8>> {
        let txn = self.db.begin_read().map_err(other)?;
        let table = txn.open_table(LDK_KV).map_err(other)?;
        match table.get((primary, secondary, key)).map_err(other)? {
            Some(v) => Ok(v.value().to_vec()),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{primary}/{secondary}/{key} is not in the LDK store"),
            )),
        }
    }

    fn write(&self, primary: &str, secondary: &str, key: &str, buf: Vec<u8>) -> io::Result<()> {
        let txn = self.db.begin_write().map_err(other)?;
        txn.open_table(LDK_KV)
            .map_err(other)?
            .insert((primary, secondary, key), buf.as_slice())
            .map_err(other)?;
        txn.commit().map_err(other)
    }

    // `lazy` is not taken up: a removal is committed as a write is, in the same order.
    fn remove(&self, primary: &str, secondary: &str, key: &str, _lazy: bool) -> io::Result<()> {
        let txn = self.db.begin_write().map_err(other)?;
        txn.open_table(LDK_KV)
            .map_err(other)?
            .remove((primary, secondary, key))
            .map_err(other)?;
        txn.commit().map_err(other)
    }

    fn list(&self, primary: &str, secondary: &str) -> io::Result<Vec<String>> {
        let txn = self.db.begin_read().map_err(other)?;
        let table = txn.open_table(LDK_KV).map_err(other)?;
        let mut keys = Vec::new();
        for row in table.range((primary, secondary, "")..).map_err(other)? {
            let (k, _) = row.map_err(other)?;
            let (p, s, key) = k.value();
            if p != primary || s != secondary {
                break;
            }
            keys.push(key.to_string());
        }
        Ok(keys)
    }
}

/// What LDK's asynchronous store answers.
type Answer<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'static>>;

fn ready<T: Send + 'static>(result: io::Result<T>) -> Answer<T> {
    Box::pin(std::future::ready(result))
}

/// The asynchronous face LDK's output sweeper uses. Each call is done before it returns
/// (a commit is a fraction of a millisecond), so writes to a key complete in the order
/// they were made, as LDK requires.
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
        let txn = self.db.begin_read().map_err(other)?;
        let table = txn.open_table(LDK_KV).map_err(other)?;
        let mut keys = Vec::new();
        for row in table.iter().map_err(other)? {
            let (k, _) = row.map_err(other)?;
            let (p, s, key) = k.value();
            keys.push((p.to_string(), s.to_string(), key.to_string()));
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_listed_and_removed_within_their_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        let store = LdkStore::open(&dir.path().join("ldk.redb")).unwrap();
        store.write("monitors", "", "a", b"1".to_vec()).unwrap();
        store.write("monitors", "", "b", b"2".to_vec()).unwrap();
        store.write("monitors", "x", "c", b"3".to_vec()).unwrap();
        store.write("monitorsz", "", "d", b"4".to_vec()).unwrap();
        store.write("", "", "manager", b"m".to_vec()).unwrap();
        assert_eq!(store.list("monitors", "").unwrap(), ["a", "b"]);
        assert_eq!(store.list("monitors", "x").unwrap(), ["c"]);
        assert_eq!(store.list("", "").unwrap(), ["manager"]);
        assert!(store.list("none", "").unwrap().is_empty());
        store.write("monitors", "", "a", b"1 again".to_vec()).unwrap();
        assert_eq!(store.read("monitors", "", "a").unwrap(), b"1 again");
        store.remove("monitors", "", "a", true).unwrap();
        let gone = store.read("monitors", "", "a").unwrap_err();
        assert_eq!(gone.kind(), io::ErrorKind::NotFound);
        assert_eq!(store.list_all_keys().unwrap().len(), 4);
    }

    #[test]
    fn a_damaged_database_is_an_error_and_stays_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ldk.redb");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        assert!(LdkStore::open(&path).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), vec![0x5a; 8192]);
    }

    #[test]
    fn an_older_file_store_is_taken_in_whole_and_its_files_removed() {
        let dir = tempfile::tempdir().unwrap();
        let node = NodeDir::new(dir.path());
        {
            let files = FilesystemStore::new(node.ldk());
            files.write("", "", "manager", b"manager".to_vec()).unwrap();
            files.write("monitors", "", "m1", b"monitor".to_vec()).unwrap();
            files.write("peers", "", "02ab", b"127.0.0.1:1".to_vec()).unwrap();
        }
        let store = LdkStore::open_node(&node).unwrap();
        assert!(!node.ldk().exists(), "the older copy is gone");
        assert_eq!(store.read("", "", "manager").unwrap(), b"manager");
        assert_eq!(store.list("monitors", "").unwrap(), ["m1"]);
        assert_eq!(store.read("peers", "", "02ab").unwrap(), b"127.0.0.1:1");
        drop(store);
        // Opened again: nothing left to take in, nothing lost.
        let store = LdkStore::open_node(&node).unwrap();
        assert_eq!(store.read("monitors", "", "m1").unwrap(), b"monitor");
    }

    #[test]
    fn files_left_behind_after_a_take_in_are_never_taken_in_again() {
        let dir = tempfile::tempdir().unwrap();
        let node = NodeDir::new(dir.path());
        let files = FilesystemStore::new(node.ldk());
        files.write("", "", "manager", b"old".to_vec()).unwrap();
        let store = LdkStore::open_node(&node).unwrap();
        store.write("", "", "manager", b"newer".to_vec()).unwrap();
        drop(store);
        // As if node-host had died between the commit and the removal of `ldk/`.
        let files = FilesystemStore::new(node.ldk());
        files.write("", "", "manager", b"old".to_vec()).unwrap();
        let store = LdkStore::open_node(&node).unwrap();
        assert_eq!(store.read("", "", "manager").unwrap(), b"newer");
        assert!(!node.ldk().exists());
    }
}
