//! node-host's state: one store per node ([`kv`]: redb in the node directory, or
//! PostgreSQL) holding LDK's objects ([`ldk_store`]) and node-host's own — the signer's
//! state, invoices, outgoing payments, the outbox — each in its namespaces, listed in
//! [`schema`]; the files of before are taken in at start ([`legacy`]).

pub mod invoices;
pub mod kv;
pub mod legacy;
pub mod ldk_store;
pub mod outbox;
pub mod payments;
pub mod schema;
pub mod signer_state;
