//! Skylight's node-host: one process per tenant, running its Lightning node while every
//! key operation is answered by the tenant's signer.
//!
//! Built so far: the *stage* (signing requests waiting for a signer) and the *signer state*
//! store (the signer's versioned state, kept durably here and shipped with requests). The
//! LDK node, the proxy that turns LDK's signer calls into requests, and the node server are
//! not built yet.
#![warn(missing_docs)]

pub mod signer_state;
pub mod stage;
