//! Skylight's client library: what the user's device does, and what node-host and the tests
//! share with it.
//!
//! Always built: [`chain`], the bitcoind JSON-RPC client (node-hosts follow the chain through
//! it; the dev chain's operator commands use it too), and [`files`] (owner-only files,
//! replaced atomically). With the `device` feature (default):
//! - the device's identity: its secret ([`secret`]), node keys ([`keys`]), certificate
//!   request ([`device`]), credentials ([`creds`]), data directory ([`device_dir`]), and
//!   registering or recovering with a scheduler ([`identity`]) over mutual TLS ([`tls`]),
//!   gRPC over the scheduler's local sockets ([`local`]),
//!   and the runes its seed mints ([`runes`]);
//! - node calls signed with the device key, and their check ([`signed_request`]), and
//!   reaching the node ([`node`]);
//! - a node's export: packed, sealed to the node key, opened and unpacked ([`export`]);
//! - the VLS signer core ([`signer`]), whose marks are saved through a [`journal`], and
//!   the loop that keeps it attached to its node and the scheduler ([`follow`]), and the
//!   seed's state key, which signs its state and its answers ([`state_key`]).
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod chain;
pub mod files;

#[cfg(feature = "device")]
pub mod creds;
#[cfg(feature = "device")]
pub mod device;
#[cfg(feature = "device")]
pub mod device_dir;
#[cfg(feature = "device")]
pub mod export;
#[cfg(feature = "device")]
pub mod follow;
#[cfg(feature = "device")]
pub mod identity;
#[cfg(feature = "device")]
pub mod journal;
#[cfg(feature = "device")]
pub mod keys;
#[cfg(feature = "device")]
pub mod local;
#[cfg(feature = "device")]
pub mod node;
#[cfg(feature = "device")]
pub mod pairing;
#[cfg(feature = "device")]
pub mod runes;
#[cfg(feature = "device")]
pub mod secret;
#[cfg(feature = "device")]
pub mod signed_request;
#[cfg(feature = "device")]
pub mod signer;
#[cfg(feature = "device")]
pub mod state_key;
#[cfg(feature = "device")]
pub mod tls;
