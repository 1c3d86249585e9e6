//! Skylight's node-host: one process per tenant, running its Lightning node while every
//! key operation is answered by the tenant's signer.
//!
//! - [`app`]: node-host assembled from its [`config`] and its node directory ([`paths`]),
//!   and its stop order.
//! - `signer_link`: LDK's signer calls become signing requests on a stage, handed to every
//!   attached signer; the signer's state is kept and shipped, and stored before an answer
//!   is released.
//! - `node`: the Lightning node (LDK) behind a facade with the node's own methods.
//! - `api`: the two gRPC services, `cln.Node` and `greenlight.Node`, one file per RPC,
//!   mapping requests onto the node and the signer link.
//! - `server`: mutual TLS trusting only the tenant's CA, and every call but the signer's
//!   plumbing signed by the caller's device key.
//! - `store`: node-host's own databases, their schema in one file.
//!
//! - [`standalone`]: an exported node run by its owner, outside any scheduler.
//! - [`database`]: a node's state copied out of PostgreSQL, for an export.
//!
//! Only [`app`], [`config`], [`database`], [`paths`] and [`standalone`] are public in what ships (the binary and the
//! scheduler use them); the feature `testing` opens the rest to tests and benches.
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

/// Modules open to tests and benches (feature `testing`), private in what ships.
macro_rules! internal {
    ($($(#[$doc:meta])* $module:ident),* $(,)?) => {
        $(
            $(#[$doc])*
            #[cfg(feature = "testing")]
            pub mod $module;
            #[cfg(not(feature = "testing"))]
            mod $module;
        )*
    };
}

pub mod app;
pub mod config;
pub mod database;
pub mod isolation;
pub mod log_file;
pub mod paths;
pub mod standalone;

internal!(
    activity,
    api,
    handover,
    node,
    server,
    signer_link,
    store,
    usage
);

/// Seconds since the Unix epoch (0 for a clock set before it).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
