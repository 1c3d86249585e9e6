//! The signer link: LDK's signer calls become signing requests, handed to every attached
//! signer; the first answer wins, and its state changes are stored before it is released.
//!
//! - [`keys`]: LDK's node-level signer traits (node id, ECDH, invoices, wallet spends).
//! - [`channel`]: our channel-signer client: LDK's channel-signer traits under its
//!   asynchronous-signing contract, with what the signer told of each channel kept durably.
//! - [`transport`]: the node-level client's transport: a call becomes a request on the
//!   [`stage`].
//! - [`stage`]: the queue of signing requests waiting for a signer.
//! - [`service`]: `StreamHsmRequests` and `RespondHsmRequest`, the signers' side.
//! - [`authority`]: only the tenant's seed answers, and only it changes the stored state.
//! - [`sync`]: what each signer has of the state, and what its answers may change.
//! - [`faults`]: node-host misbehaving toward its signer, for tests only.

pub mod authority;
pub mod channel;
pub mod faults;
pub mod keys;
pub mod service;
pub mod spend;
pub mod stage;
pub mod sync;
pub mod transport;
