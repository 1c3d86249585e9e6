//! Where a node's state is kept: one backend for all of it.
//!
//! A node's state is named as LDK's store names it — (primary namespace, secondary
//! namespace, key) → bytes — LDK's own objects and node-host's (the signer's state,
//! invoices, payments, the outbox, channel signers' records: see `schema.rs` for each
//! [`Space`]). A backend keeps it: [`redb::RedbKv`], one file in the node directory (one
//! machine, the default), or [`postgres::PgKv`], a PostgreSQL database any machine can
//! reach, every commit fenced by the tenant's lease. A commit applies all its changes or
//! none, returns once durable (unless asked for [`Durability::Eventual`]), and commits
//! apply in the order they are made.

pub mod choose;
pub mod postgres;
pub mod redb;

use std::collections::BTreeMap;

// LDK's io types: std's with `std`, but named through LDK.
use lightning_signer::lightning::io;

/// One namespace of node-host's own state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Space {
    /// LDK's primary namespace.
    pub primary: &'static str,
    /// LDK's secondary namespace.
    pub secondary: &'static str,
}

/// A key set to a value, or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Primary namespace.
    pub primary: String,
    /// Secondary namespace.
    pub secondary: String,
    /// Key.
    pub key: String,
    /// The new value; none removes the key.
    pub value: Option<Vec<u8>>,
}

/// When a commit must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Before the commit returns: what the node acts on.
    Immediate,
    /// With a later commit: what can be asked for again if lost (a crash may lose the
    /// last few such commits, never a part of one).
    Eventual,
}

/// A node's state, kept somewhere.
pub trait NodeKv: Send + Sync {
    /// The value under the key, if any.
    fn read(&self, primary: &str, secondary: &str, key: &str) -> io::Result<Option<Vec<u8>>>;
    /// Applies every change, all or none, in one transaction.
    fn commit(&self, changes: Vec<Change>, durability: Durability) -> io::Result<()>;
    /// The keys in one namespace, in byte order.
    fn list(&self, primary: &str, secondary: &str) -> io::Result<Vec<String>>;
    /// The keys and values in one namespace, in byte order of the keys.
    fn scan(&self, primary: &str, secondary: &str) -> io::Result<Vec<(String, Vec<u8>)>>;
    /// Every key, in byte order of (primary, secondary, key).
    fn list_all(&self) -> io::Result<Vec<(String, String, String)>>;

    /// Sets the key, durably, before returning.
    fn write(&self, primary: &str, secondary: &str, key: &str, value: &[u8]) -> io::Result<()> {
        let change = Change {
            primary: primary.into(),
            secondary: secondary.into(),
            key: key.into(),
            value: Some(value.to_vec()),
        };
        self.commit(vec![change], Durability::Immediate)
    }

    /// Removes the key (if there), durably, before returning.
    fn remove(&self, primary: &str, secondary: &str, key: &str) -> io::Result<()> {
        let change = Change {
            primary: primary.into(),
            secondary: secondary.into(),
            key: key.into(),
            value: None,
        };
        self.commit(vec![change], Durability::Immediate)
    }
}

/// Changes gathered for one commit, read back before they are made (a read sees the
/// batch's own changes first). What reads and then writes must hold its store's lock
/// across the batch: node-host is the node's one writer, and the lock makes it one
/// writer of the batch's keys at a time.
pub struct Batch<'a> {
    kv: &'a dyn NodeKv,
    changes: BTreeMap<(Space, String), Option<Vec<u8>>>,
}

impl<'a> Batch<'a> {
    /// An empty batch on `kv`.
    pub fn new(kv: &'a dyn NodeKv) -> Self {
        Batch {
            kv,
            changes: BTreeMap::new(),
        }
    }

    /// The value under `key` as the batch would leave it.
    pub fn get(&self, space: Space, key: &str) -> io::Result<Option<Vec<u8>>> {
        match self.changes.get(&(space, key.to_string())) {
            Some(v) => Ok(v.clone()),
            None => self.kv.read(space.primary, space.secondary, key),
        }
    }

    /// Sets `key`.
    pub fn put(&mut self, space: Space, key: &str, value: Vec<u8>) {
        self.changes.insert((space, key.to_string()), Some(value));
    }

    /// Removes `key`.
    pub fn delete(&mut self, space: Space, key: &str) {
        self.changes.insert((space, key.to_string()), None);
    }

    /// Raises the counter `name` (in `space`) by one and returns its new value: the first
    /// is 1.
    pub fn next(&mut self, space: Space, name: &str) -> io::Result<u64> {
        let next = counter(self.get(space, name)?.as_deref())? + 1;
        self.put(space, name, next.to_be_bytes().to_vec());
        Ok(next)
    }

    /// Commits the changes (nothing at all when there are none).
    pub fn commit(self, durability: Durability) -> io::Result<()> {
        if self.changes.is_empty() {
            return Ok(());
        }
        let changes = self
            .changes
            .into_iter()
            .map(|((space, key), value)| Change {
                primary: space.primary.into(),
                secondary: space.secondary.into(),
                key,
                value,
            })
            .collect();
        self.kv.commit(changes, durability)
    }
}

/// A counter's stored value (8 bytes, big-endian); none is 0.
pub fn counter(raw: Option<&[u8]>) -> io::Result<u64> {
    match raw {
        None => Ok(0),
        Some(b) => b
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| other("a damaged counter")),
    }
}

/// A number as a key that sorts as the number does (20 digits).
pub fn number_key(n: u64) -> String {
    format!("{n:020}")
}

/// A store failure as LDK's io error.
pub(crate) fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::Other, format!("node state: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPACE: Space = Space {
        primary: "skylight",
        secondary: "test",
    };

    #[test]
    fn a_batch_reads_its_own_changes_and_commits_them_together() {
        let dir = tempfile::tempdir().unwrap();
        let kv = redb::RedbKv::open(&dir.path().join("ldk.redb")).unwrap();
        kv.write("skylight", "test", "gone", b"x").unwrap();
        let mut batch = Batch::new(&kv);
        assert_eq!(batch.next(SPACE, "n").unwrap(), 1);
        assert_eq!(batch.next(SPACE, "n").unwrap(), 2);
        batch.put(SPACE, "k", b"v".to_vec());
        batch.delete(SPACE, "gone");
        assert_eq!(batch.get(SPACE, "k").unwrap().unwrap(), b"v");
        assert_eq!(batch.get(SPACE, "gone").unwrap(), None);
        assert_eq!(kv.read("skylight", "test", "k").unwrap(), None, "not yet");
        batch.commit(Durability::Immediate).unwrap();
        assert_eq!(
            kv.scan("skylight", "test").unwrap(),
            [
                ("k".to_string(), b"v".to_vec()),
                ("n".to_string(), 2u64.to_be_bytes().to_vec()),
            ]
        );
    }

    #[test]
    fn number_keys_sort_as_their_numbers() {
        let mut keys: Vec<String> = [10, 9, 100, 1].into_iter().map(number_key).collect();
        keys.sort();
        assert_eq!(keys, [1, 9, 10, 100].map(number_key));
    }
}
