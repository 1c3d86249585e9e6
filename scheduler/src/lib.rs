//! Skylight's scheduler: the operator's service.
//!
//! It speaks Greenlight's `scheduler` protocol over mutual TLS: tenants register and recover
//! by proving their node key with a signed challenge, and receive per-device certificates
//! signed from their CSRs under a CA of their own.
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod admin;
pub mod api;
pub mod auth;
pub mod chain;
pub mod challenge;
pub mod config;
pub mod datadir;
pub mod error;
pub mod export;
pub mod invite;
pub mod limits;
pub mod metrics;
pub mod nodes;
pub mod pairing;
pub mod proof;
pub mod report_limits;
pub mod revocations;
pub mod server;
pub mod shutdown;
pub mod signers;
pub mod state;
pub mod store;
pub mod webhooks;
