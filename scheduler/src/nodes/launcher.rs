//! Where a tenant's node-host runs: the seam between the node manager, which decides when a
//! tenant's node runs (one start at a time, stopped for an export, its place among the
//! running counted), and what runs it. Today's launcher runs local processes
//! ([`super::local::LocalLauncher`]): the single-machine default and the test backend.
//! Another (a cluster's) starts the same node-host elsewhere and supervises it through the
//! same two traits.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::NodeManager;
use crate::error::Error;

/// A future a launcher returns.
pub type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Starts tenants' node-hosts.
pub trait Launcher: Send + Sync {
    /// Starts the node-host of `node_id` (registered, not exported, its place taken) and
    /// returns once its gRPC answers. A start given up (the future dropped, or an error)
    /// leaves nothing running.
    fn start<'a>(
        &'a self,
        manager: &'a NodeManager,
        node_id: &'a [u8; 33],
    ) -> Boxed<'a, Result<Arc<dyn Started>, Error>>;
}

/// A node-host a launcher started, as the manager supervises it.
pub trait Started: Send + Sync {
    /// Where its gRPC listens, as clients are given it.
    fn uri(&self) -> &str;
    /// Its process id, when it runs on this machine (how the events socket knows it).
    fn pid(&self) -> Option<u32>;
    /// Whether it still runs.
    fn alive(&self) -> bool;
    /// Asks it to stop (it stores its state and says goodbye to its peers), and makes it
    /// stop after `grace`.
    fn stop(&self, grace: Duration) -> Boxed<'_, ()>;
    /// Resolves once it has exited: `Ok` for a clean stop, else how it ended. Called once,
    /// by the manager's supervisor.
    fn exited(&self) -> Boxed<'_, Result<(), String>>;
}
