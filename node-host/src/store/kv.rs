//! Where a node's state is kept: the backends behind LDK's store.
//!
//! A node's state is named as LDK's store names it — (primary namespace, secondary
//! namespace, key) → bytes — and a backend keeps it: [`redb::RedbKv`], one file in the node
//! directory (one machine, the default), or [`postgres::PgKv`], a PostgreSQL database any
//! machine can reach, every write fenced by the tenant's lease. A write returns once it is
//! durable, and writes are applied in the order they are made.

pub mod choose;
pub mod postgres;
pub mod redb;

// LDK's io types: std's with `std`, but named through LDK.
use lightning_signer::lightning::io;

/// A node's state, kept somewhere.
pub trait NodeKv: Send + Sync {
    /// The value under the key, if any.
    fn read(&self, primary: &str, secondary: &str, key: &str) -> io::Result<Option<Vec<u8>>>;
    /// Sets the key, durably, before returning.
    fn write(&self, primary: &str, secondary: &str, key: &str, value: &[u8]) -> io::Result<()>;
    /// Removes the key (if there), durably, before returning.
    fn remove(&self, primary: &str, secondary: &str, key: &str) -> io::Result<()>;
    /// The keys in one namespace, in byte order.
    fn list(&self, primary: &str, secondary: &str) -> io::Result<Vec<String>>;
    /// Every key, in byte order of (primary, secondary, key).
    fn list_all(&self) -> io::Result<Vec<(String, String, String)>>;
}

/// A store failure as LDK's io error.
pub(crate) fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::Other, format!("LDK store: {e}"))
}
