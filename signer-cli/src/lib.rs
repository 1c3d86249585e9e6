//! signer-cli: the user's device. It holds the node secret, registers and recovers the node
//! with a Skylight (or Greenlight-compatible) scheduler, and keeps the device credentials.
#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod creds;
pub mod device;
pub mod identity;
pub mod keys;
pub mod node_api;
pub mod run;
pub mod secret;
pub mod signer;
