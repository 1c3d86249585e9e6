//! What every handler shares.

use skylight_certs::Authority;

use crate::challenge::ChallengeBook;
use crate::config::Config;
use crate::nodes::NodeManager;
use crate::store::Store;

/// The scheduler's shared state.
pub struct State {
    /// Settings.
    pub config: Config,
    /// The database.
    pub store: Store,
    /// The users CA: signs each tenant's CA.
    pub users_ca: Authority,
    /// The root certificate, PEM (ends every chain we hand out).
    pub root_pem: String,
    /// Outstanding challenges.
    pub challenges: ChallengeBook,
    /// The tenants' node-hosts.
    pub nodes: NodeManager,
    /// Signers attached through `SignerRequestsStream`.
    pub signers: crate::signers::SignerHub,
    /// Budgets of calls per caller.
    pub calls: crate::limits::CallLimits,
    /// Budgets for signer rejection reports.
    pub report_limits: crate::report_limits::ReportLimits,
    /// Pairing sessions.
    pub pairings: crate::pairing::Pairings,
    /// Revoked devices.
    pub revocations: std::sync::Arc<crate::revocations::Revocations>,
    /// The webhooks' delivery workers.
    pub webhooks: std::sync::Arc<crate::webhooks::Dispatcher>,
    /// Tenants' exports.
    pub exports: std::sync::Arc<crate::export::Exports>,
}

impl State {
    /// A device certificate chain as Greenlight's clients want it: leaf, tenant CA, users
    /// CA, root.
    pub fn device_chain(&self, leaf_pem: &str, tenant_ca_pem: &str) -> String {
        format!(
            "{leaf_pem}{tenant_ca_pem}{}{}",
            self.users_ca.cert_pem(),
            self.root_pem
        )
    }
}

/// Runs blocking work (storage, key generation) off the async threads.
pub async fn blocking<T, F>(f: F) -> Result<T, crate::error::Error>
where
    F: FnOnce() -> Result<T, crate::error::Error> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| crate::error::Error::Internal(format!("blocking task failed: {e}")))?
}
