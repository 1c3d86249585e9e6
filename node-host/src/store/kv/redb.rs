//! A node's state in one redb database in its node directory (`ldk.redb`).
//!
//! Why not LDK's file store: each of its writes is a file written and synced, renamed, and
//! its directory synced, and a payment makes about a dozen of them on each side (monitor
//! updates, manager persists) on its critical path. A redb commit is one `fdatasync`.
//! Each write is its own transaction, committed before it returns.
//!
//! A node directory from before keeps its state in `ldk/` (the file store): it is taken in
//! whole, in one transaction that also marks it taken in, checked back key by key, and only
//! then is `ldk/` removed (a stale copy of a node's state is a hazard, not a backup).

use std::path::Path;

use lightning_persister::fs_store::FilesystemStore;
use lightning_signer::lightning::io;
use lightning_signer::lightning::util::persist::{KVStoreSync, MigratableKVStore};
use redb::{Database, ReadableDatabase, ReadableTable};

use super::{Change, Durability, NodeKv, other};
use crate::paths::NodeDir;
use crate::store::schema::{self, LDK_FILES_MIGRATED_KEY, LDK_KV, META};

/// A node's state in redb.
pub struct RedbKv {
    db: Database,
}

impl RedbKv {
    /// Opens (creating) the state of the node in `dir`, taking in an older `ldk/` file
    /// store first if there is one.
    pub fn open_node(dir: &NodeDir) -> io::Result<Self> {
        let kv = Self::open(&dir.ldk_store())?;
        let files = dir.ldk();
        if files.exists() {
            if !kv.files_taken_in()? {
                kv.take_in(&FilesystemStore::new(files.clone()))?;
                tracing::info!(from = %files.display(), "LDK's file store taken into ldk.redb");
            }
            // ldk.redb holds the node now; the files would only be an older copy of it.
            std::fs::remove_dir_all(&files)?;
            skylight_client::files::sync_dir_of(&files)?;
        }
        Ok(kv)
    }

    /// Opens (creating) the database at `path`, to be shared by node-host's parts.
    #[cfg(any(test, feature = "testing"))]
    pub fn shared(path: &Path) -> io::Result<std::sync::Arc<dyn NodeKv>> {
        Ok(std::sync::Arc::new(Self::open(path)?))
    }

    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> io::Result<Self> {
        let db = schema::open(path).map_err(other)?;
        let txn = db.begin_write().map_err(other)?;
        txn.open_table(LDK_KV).map_err(other)?;
        txn.commit().map_err(other)?;
        Ok(RedbKv { db })
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
            if self.read(p, s, k)?.as_deref() != Some(files.read(p, s, k)?.as_slice()) {
                return Err(other(format!(
                    "{p}/{s}/{k} reads back other than the file it was taken from"
                )));
            }
        }
        Ok(())
    }
}

impl NodeKv for RedbKv {
    fn read(&self, primary: &str, secondary: &str, key: &str) -> io::Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read().map_err(other)?;
        let table = txn.open_table(LDK_KV).map_err(other)?;
        Ok(table
            .get((primary, secondary, key))
            .map_err(other)?
            .map(|v| v.value().to_vec()))
    }

    fn commit(&self, changes: Vec<Change>, durability: Durability) -> io::Result<()> {
        let mut txn = self.db.begin_write().map_err(other)?;
        if durability == Durability::Eventual {
            // Made durable by the next durable commit: redb keeps commits in order.
            txn.set_durability(redb::Durability::None)
                .map_err(other)?;
        }
        {
            let mut table = txn.open_table(LDK_KV).map_err(other)?;
            for c in &changes {
                let key = (c.primary.as_str(), c.secondary.as_str(), c.key.as_str());
                match &c.value {
                    Some(v) => {
                        table.insert(key, v.as_slice()).map_err(other)?;
                    }
                    None => {
                        table.remove(key).map_err(other)?;
                    }
                }
            }
        }
        txn.commit().map_err(other)
    }

    fn scan(&self, primary: &str, secondary: &str) -> io::Result<Vec<(String, Vec<u8>)>> {
        let txn = self.db.begin_read().map_err(other)?;
        let table = txn.open_table(LDK_KV).map_err(other)?;
        let mut rows = Vec::new();
        for row in table.range((primary, secondary, "")..).map_err(other)? {
            let (k, v) = row.map_err(other)?;
            let (p, s, key) = k.value();
            if p != primary || s != secondary {
                break;
            }
            rows.push((key.to_string(), v.value().to_vec()));
        }
        Ok(rows)
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

    fn list_all(&self) -> io::Result<Vec<(String, String, String)>> {
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
    fn a_damaged_database_is_an_error_and_stays_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ldk.redb");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        assert!(RedbKv::open(&path).is_err());
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
        let kv = RedbKv::open_node(&node).unwrap();
        assert!(!node.ldk().exists(), "the older copy is gone");
        assert_eq!(kv.read("", "", "manager").unwrap().unwrap(), b"manager");
        assert_eq!(kv.list("monitors", "").unwrap(), ["m1"]);
        assert_eq!(kv.read("peers", "", "02ab").unwrap().unwrap(), b"127.0.0.1:1");
        drop(kv);
        // Opened again: nothing left to take in, nothing lost.
        let kv = RedbKv::open_node(&node).unwrap();
        assert_eq!(kv.read("monitors", "", "m1").unwrap().unwrap(), b"monitor");
    }

    #[test]
    fn files_left_behind_after_a_take_in_are_never_taken_in_again() {
        let dir = tempfile::tempdir().unwrap();
        let node = NodeDir::new(dir.path());
        let files = FilesystemStore::new(node.ldk());
        files.write("", "", "manager", b"old".to_vec()).unwrap();
        let kv = RedbKv::open_node(&node).unwrap();
        kv.write("", "", "manager", b"newer").unwrap();
        drop(kv);
        // As if node-host had died between the commit and the removal of `ldk/`.
        let files = FilesystemStore::new(node.ldk());
        files.write("", "", "manager", b"old".to_vec()).unwrap();
        let kv = RedbKv::open_node(&node).unwrap();
        assert_eq!(kv.read("", "", "manager").unwrap().unwrap(), b"newer");
        assert!(!node.ldk().exists());
    }
}
