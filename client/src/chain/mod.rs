//! The chain through bitcoind's JSON-RPC (the embedded dev chain speaks it too): node-hosts
//! follow the chain through it, the scheduler checks it, and operator commands and tests
//! drive the dev chain with it.
//!
//! - [`rpc`]: where the chain is and how to authenticate, as an operator gives it;
//! - [`client`]: the client, which reads a rewritten cookie again and tells a chain that
//!   cannot be reached from one that refuses;
//! - [`info`]: what `getblockchaininfo` says (the network, whether it is in sync).

pub mod client;
pub mod info;
pub mod rpc;

pub use client::{ChainClient, ChainError};
pub use info::ChainInfo;
pub use rpc::{ChainRpc, RpcAuth};
