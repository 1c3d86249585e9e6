//! Skylight's node-host: one process per tenant, running its Lightning node while every
//! key operation is answered by the tenant's signer.
//!
//! Built so far: the *stage* (signing requests waiting for a signer), the *signer state*
//! store (the signer's versioned state, kept durably here and shipped with requests), and
//! the node server's signer plumbing (`StreamHsmRequests`, `RespondHsmRequest` over mutual
//! TLS trusting only the tenant's CA). The LDK node and the proxy that turns LDK's signer
//! calls into requests are not built yet.
#![warn(missing_docs)]

pub mod activity;
pub mod hsm_service;
pub mod keys;
pub mod ldk;
pub mod node_service;
pub mod proxy;
pub mod server;
pub mod signed_requests;
pub mod signed_service;
pub mod signer_state;
pub mod stage;
