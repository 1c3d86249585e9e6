//! Why a node call failed, in words meant for the person who asked (`Internal` aside:
//! its detail is for the log).

use std::time::Duration;

/// Why a node call failed. Every variant but `Internal` carries a message for the caller.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The label names another invoice already.
    #[error("an invoice labelled {0:?} exists already: labels name one invoice for good")]
    DuplicateLabel(String),
    /// No signer attached within the wait.
    #[error(
        "no signer is attached to sign the {what} (waited {} s): run `signer-cli run` for this node and try again",
        waited.as_secs()
    )]
    NoSigner {
        /// What needed signing.
        what: String,
        /// How long the call waited.
        waited: Duration,
    },
    /// The Lightning node has not started (its signer never attached).
    #[error(
        "the Lightning node has not started, so it cannot give {0}: it starts when the tenant's signer first attaches (run `signer-cli run`)"
    )]
    NotStarted(String),
    /// A peer cannot be reached.
    #[error("{0}")]
    Unreachable(String),
    /// The signer did not answer in time.
    #[error("the signer did not answer in time while signing the {0}; try again")]
    SignerTimeout(String),
    /// The signer refused on policy.
    #[error("the signer refused to sign the {what}: {reason}")]
    Refused {
        /// What it was asked to sign.
        what: String,
        /// Its reason.
        reason: String,
    },
    /// The node is not in a state to do it (a peer not connected, say).
    #[error("{0}")]
    Precondition(String),
    /// No such thing.
    #[error("{0}")]
    NotFound(String),
    /// Storage or another fault on our side: logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}
