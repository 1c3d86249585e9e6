//! Outgoing webhooks: node-hosts hand over the events they raise ([`ingest`]), which are
//! stored with a delivery per webhook of the tenant and posted, signed both Greenlight's way
//! and the Standard Webhooks way ([`sign`]), by one worker per webhook ([`dispatch`]) to
//! targets the operator allows ([`target`]).

pub mod dispatch;
pub mod ingest;
pub mod payload;
pub mod settings;
pub mod sign;
pub mod target;

pub use dispatch::Dispatcher;
