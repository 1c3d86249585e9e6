//! What Skylight's tests and benchmarks share.
//!
//! - The real binaries ([`bin`]): a [`Scheduler`] in a temporary directory on ephemeral
//!   ports, and [`SignerCli`] data directories driven through `signer-cli`; both stop their
//!   processes when dropped.
//! - Tenants registered through the client library ([`register_invited`],
//!   [`register_new_tenant`]) and the codes refused calls get ([`code_of`], [`status_of`]).
//! - A signer in process ([`in_process`]), attached to node-host's stage as `signer-cli`
//!   attaches over the network, and a certificate hierarchy made in memory ([`Pki`]).
//! - Tenants as an app drives them, their signers in this process ([`app`]).
//! - A `devchain` process standing in for an external bitcoind ([`ExternalChain`]), and
//!   the command lines that hold a secret ([`command_lines_holding`]).
//! - The Python that runs published clients for interop checks ([`interop_python`]).
//! - A webhook receiver on loopback that records what it gets ([`WebhookReceiver`]).
//! - An invoice nobody can pay ([`unreachable_invoice`]), and a node's stored channel
//!   monitors ([`stored_monitors`]).
//! - What the chain shows of a scenario ([`onchain`]) and a tenant's backups ([`backup`]).
//! - An exported node run with `node-host standalone` ([`StandaloneNode`]).
//! - Two tenants with their signers, a funded wallet and a channel ([`pair`]), and a relay
//!   between peers that can hold what one sends ([`proxy`]).
//! - A real PostgreSQL server in a temporary directory ([`Postgres`]).
//! - Waiting without asserting timings ([`eventually`]), processes ([`alive`],
//!   [`node_pid`]), and benchmark figures ([`percentile`], [`ms`]).
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod app;
pub mod backup;
mod binaries;
mod devchain;
pub mod in_process;
mod invoices;
mod ldk_state;
pub mod onchain;
pub mod pair;
mod pki;
pub mod postgres;
mod process;
pub mod proxy;
mod python;
mod scheduler;
mod signer_cli;
mod standalone;
mod stats;
mod tenant;
mod webhook_receiver;

pub use binaries::bin;
pub use devchain::{ExternalChain, command_lines_holding};
pub use invoices::unreachable_invoice;
pub use ldk_state::stored_monitors;
pub use pki::Pki;
pub use postgres::Postgres;
pub use process::{alive, eventually, node_pid};
pub use python::interop_python;
pub use scheduler::{Scheduler, metric_value};
pub use signer_cli::{ChildGuard, Run, SignerCli};
pub use standalone::{StandaloneNode, standalone_command, standalone_log, standalone_refused};
pub use stats::{ms, percentile};
pub use tenant::{NewTenant, code_of, new_keys, register_invited, register_new_tenant, status_of};
pub use webhook_receiver::{Received, WebhookReceiver};
