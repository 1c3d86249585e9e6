//! Node errors mapped to gRPC statuses, in one place. Internal details are logged, never
//! sent: the caller learns that something failed on the node's side and where to look.

use tonic::Status;

use crate::node::NodeError;
use crate::signer_link::service::LinkError;

/// The status a failed node call answers with.
pub fn status(e: NodeError) -> Status {
    let message = e.to_string();
    match e {
        NodeError::Invalid(_) => Status::invalid_argument(message),
        NodeError::DuplicateLabel(_) => Status::already_exists(message),
        NodeError::NoSigner { .. }
        | NodeError::SignerTimeout(_)
        | NodeError::NotStarted(_)
        | NodeError::Unreachable(_) => Status::unavailable(message),
        NodeError::Refused { .. } => Status::permission_denied(message),
        NodeError::Precondition(_) => Status::failed_precondition(message),
        NodeError::NotFound(_) => Status::not_found(message),
        NodeError::Internal(detail) => {
            tracing::error!(%detail, "node call failed");
            Status::internal("the node hit an internal error; the operator's log has the details")
        }
    }
}

/// The status a signer's answer that was not taken gets.
pub fn link_status(e: LinkError) -> Status {
    let message = e.to_string();
    match e {
        LinkError::NotWaiting(_) | LinkError::AnsweredFirst(_) => Status::not_found(message),
        LinkError::Storage => Status::unavailable(message),
        LinkError::Conflict(_) => Status::failed_precondition(message),
        LinkError::NotTheSigner(_) => Status::permission_denied(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_keeps_its_detail_in_the_log() {
        let s = status(NodeError::Internal("redb: disk I/O at /srv/x".into()));
        assert_eq!(s.code(), tonic::Code::Internal);
        assert!(!s.message().contains("redb"), "{}", s.message());
    }

    #[test]
    fn a_refusal_says_whose_and_why() {
        let s = status(NodeError::Refused {
            what: "payment".into(),
            reason: "policy: unapproved destination".into(),
        });
        assert_eq!(s.code(), tonic::Code::PermissionDenied);
        assert!(s.message().contains("policy: unapproved destination"));
    }
}
