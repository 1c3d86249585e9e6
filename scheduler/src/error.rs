//! The scheduler's one error type, and the one place it becomes a gRPC status.

use tonic::{Code, Status};

/// Why a request failed. Every variant but `Internal` carries a message meant for the
/// person at the other end; `Internal` details are logged, never sent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// The caller did not prove who it is (bad challenge or signature).
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known but may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The thing to create exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The system is not in a state where this can be done.
    #[error("{0}")]
    FailedPrecondition(String),
    /// Too many outstanding requests of this kind.
    #[error("{0}")]
    ResourceExhausted(String),
    /// A dependency (a node-host) is not available now; trying again may work.
    #[error("{0}")]
    Unavailable(String),
    /// What the call waits for (an approval, a signer's answer) did not come in time.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// The call is part of the protocol but this version of Skylight does not build it yet.
    #[error("{0}")]
    Unimplemented(String),
    /// A fault on our side (storage, certificate generation).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        let (code, msg) = match err {
            Error::InvalidArgument(m) => (Code::InvalidArgument, m),
            Error::Unauthenticated(m) => (Code::Unauthenticated, m),
            Error::PermissionDenied(m) => (Code::PermissionDenied, m),
            Error::NotFound(m) => (Code::NotFound, m),
            Error::AlreadyExists(m) => (Code::AlreadyExists, m),
            Error::FailedPrecondition(m) => (Code::FailedPrecondition, m),
            Error::ResourceExhausted(m) => (Code::ResourceExhausted, m),
            Error::Unimplemented(m) => (Code::Unimplemented, m),
            Error::Unavailable(m) => (Code::Unavailable, m),
            Error::DeadlineExceeded(m) => (Code::DeadlineExceeded, m),
            Error::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (
                    Code::Internal,
                    "the scheduler hit an internal error; the operator's log has the details"
                        .to_string(),
                )
            }
        };
        Status::new(code, msg)
    }
}

impl From<skylight_certs::CertError> for Error {
    fn from(err: skylight_certs::CertError) -> Self {
        match err {
            skylight_certs::CertError::BadCsr(m) => Error::InvalidArgument(format!("bad CSR: {m}")),
            other => Error::Internal(other.to_string()),
        }
    }
}
