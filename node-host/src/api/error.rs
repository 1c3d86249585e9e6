//! The node API's errors, mapped to gRPC statuses in one place.

use std::time::Duration;

use tonic::Status;

/// Why a node call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
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
    /// Storage or another fault on our side.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        let message = e.to_string();
        match e {
            ApiError::Invalid(_) => Status::invalid_argument(message),
            ApiError::DuplicateLabel(_) => Status::already_exists(message),
            ApiError::NoSigner { .. }
            | ApiError::SignerTimeout(_)
            | ApiError::NotStarted(_)
            | ApiError::Unreachable(_) => Status::unavailable(message),
            ApiError::Refused { .. } => Status::permission_denied(message),
            ApiError::Precondition(_) => Status::failed_precondition(message),
            ApiError::NotFound(_) => Status::not_found(message),
            ApiError::Internal(_) => {
                tracing::error!(%message, "node call failed");
                Status::internal(message)
            }
        }
    }
}
