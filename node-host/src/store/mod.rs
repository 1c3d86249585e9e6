//! node-host's own databases (redb): the signer's state, invoices and outgoing payments,
//! each with its tables listed, and its version checked at open, in [`schema`].

pub mod invoices;
pub mod payments;
pub mod schema;
pub mod signer_state;
