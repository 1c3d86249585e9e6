//! Skylight's node-host: one process per tenant, running its Lightning node while every
//! key operation is answered by the tenant's signer.
//!
//! - [`stage`]: signing requests waiting for a signer; [`proxy`] and [`keys`] turn LDK's
//!   signer calls into such requests.
//! - [`signer_state`]: the signer's versioned state, kept durably here and shipped with
//!   requests.
//! - [`node_service`] and [`hsm_service`]: `greenlight.Node`, with the signer's plumbing
//!   (`StreamHsmRequests`, `RespondHsmRequest`), over mutual TLS trusting only the tenant's
//!   CA ([`server`]); node calls must be signed by a device key ([`signed_requests`]).
//! - [`node`] and [`ldk`]: the LDK node, started once the signer is there.
//! - [`api`]: `cln.Node`, the node API.
#![warn(missing_docs)]

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
pub mod paths;

internal!(activity, api, node, server, signer_link, store);

/// Seconds since the Unix epoch (0 for a clock set before it).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
