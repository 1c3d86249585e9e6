//! The signers' side of the link: a signer attaches and receives every staged request
//! (`StreamHsmRequests`), and answers them (`RespondHsmRequest`). What each request carries of the
//! state, and what an answer may change, is [`super::sync`]'s; which signed client requests
//! travel with it is a [`ShippedRequests`] chosen at start-up.

use std::sync::Arc;

use skylight_proto::greenlight::{HsmRequest, HsmResponse, PendingRequest};
use tokio_stream::wrappers::ReceiverStream;

use super::authority::{Authority, NotTheSigner};
use super::stage::{Delivery, SignerError, Stage};
use super::sync::{StateSync, SyncError};
use crate::server::revoked::RevokedDevices;
use crate::server::signed_requests::Verifier;
use crate::store::signer_state::SignerState;

/// How soon a request that failed temporarily is sent to the signers again.
pub const RETRY_TEMPORARY: std::time::Duration = std::time::Duration::from_millis(300);

/// The signed client requests that travel with each signing request: the signer matches
/// what it is asked to sign against them.
pub trait ShippedRequests: Send + Sync {
    /// The requests to ship now.
    fn shipped(&self) -> Vec<PendingRequest>;
}

/// Honestly: the requests of the calls in progress.
impl ShippedRequests for Verifier {
    fn shipped(&self) -> Vec<PendingRequest> {
        self.recent()
    }
}

/// Requests for one signer, the backlog first.
pub type RequestStream = ReceiverStream<HsmRequest>;

/// Why an answer was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No request with this id is waiting.
    #[error("request {0} is not waiting for an answer (answered already, or never sent)")]
    NotWaiting(u32),
    /// Another signer answered first.
    #[error("request {0} was answered by another signer first")]
    AnsweredFirst(u32),
    /// The answer's state could not be stored: the request stays open.
    #[error("the node could not store the signer's state; the request stays open")]
    Storage,
    /// The answer was computed from a state the node does not hold.
    #[error(
        "the answer's state conflicts with the node's ({0} entries); the request stays open and the node's state wins"
    )]
    Conflict(usize),
    /// The answer is not the tenant's seed's: its device may not answer.
    #[error("{0}")]
    NotTheSigner(NotTheSigner),
}

/// The signers' side of the link.
#[derive(Clone)]
pub struct SignerLink {
    stage: Arc<Stage>,
    sync: Arc<StateSync>,
    shipped: Arc<dyn ShippedRequests>,
    authority: Arc<Authority>,
    revoked: Arc<RevokedDevices>,
}

impl SignerLink {
    /// Serves signers from `stage`, keeping `state`, shipping `shipped` with each request,
    /// and taking answers only from the seed `authority` knows.
    pub fn new(
        stage: Arc<Stage>,
        state: Arc<SignerState>,
        shipped: Arc<dyn ShippedRequests>,
        authority: Authority,
    ) -> Self {
        SignerLink {
            stage,
            sync: Arc::new(StateSync::new(state)),
            shipped,
            authority: Arc::new(authority),
            revoked: Arc::new(RevokedDevices::none()),
        }
    }

    /// Sends nothing more to a stream whose device `revoked` names.
    pub fn with_revoked(mut self, revoked: Arc<RevokedDevices>) -> Self {
        self.revoked = revoked;
        self
    }

    /// Attaches the signer of `device`: every staged request, oldest first, then new ones,
    /// each with what this signer lacks of the state.
    pub fn attach(&self, device: String) -> RequestStream {
        let mut attachment = self.stage.attach();
        let session = attachment.session;
        self.sync.attach(session, &device);
        tracing::info!(session, %device, "signer attached");
        crate::usage::signer_attached();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let link = self.clone();
        tokio::spawn(async move {
            loop {
                // A signer that goes away must stop counting as attached even when no
                // request is coming: watch for the stream closing too.
                let staged = tokio::select! {
                    staged = attachment.requests.recv() => staged,
                    () = tx.closed() => None,
                };
                let Some(staged) = staged else { break };
                // Revoked while attached: its stream ends here.
                if link.revoked.contains(&device) {
                    tracing::warn!(session, %device, "revoked device: its stream is closed");
                    break;
                }
                let request = HsmRequest {
                    request_id: staged.request_id,
                    context: staged.context,
                    raw: staged.raw,
                    signer_state: super::faults::spoil_state(link.sync.outgoing(session)),
                    requests: link.shipped.shipped(),
                };
                if tx.send(request).await.is_err() {
                    break;
                }
            }
            link.stage.detach(session);
            link.sync.detach(session);
            tracing::info!(session, "signer detached");
        });
        ReceiverStream::new(rx)
    }

    /// Takes `device`'s answer: its state first, durably; then the answer, to the node.
    pub fn respond(&self, device: &str, resp: HsmResponse) -> Result<(), LinkError> {
        let id = resp.request_id;
        let Some(request) = self.stage.pending_raw(id) else {
            return Err(LinkError::NotWaiting(id));
        };
        // Only the seed answers, and only the seed changes the stored state.
        match self.authority.check(&request, &resp) {
            Ok(()) => {}
            Err(NotTheSigner::Storage(e)) => {
                tracing::error!(error = %e, request = id, "cannot pin the state key; answer refused");
                return Err(LinkError::Storage);
            }
            Err(why) => {
                tracing::warn!(%device, request = id, %why, "answer refused: not the tenant's seed");
                return Err(LinkError::NotTheSigner(why));
            }
        }
        // Durably first: the node must never act on an answer whose state it could lose.
        match self.sync.incoming(device, &resp.signer_state) {
            Ok(()) => {}
            Err(SyncError::Storage(e)) => {
                tracing::error!(error = %e, request = id, "cannot store signer state; answer refused");
                return Err(LinkError::Storage);
            }
            Err(SyncError::Conflict(keys)) => {
                // Acting on an answer computed from a state the node does not hold could
                // contradict what it does hold.
                tracing::warn!(request = id, ?keys, "signer answered from a state the node does not hold; answer refused");
                return Err(LinkError::Conflict(keys.len()));
            }
        }
        let answer = if resp.error.is_empty() {
            Ok(resp.raw)
        } else {
            let err = SignerError::from_signer_text(&resp.error);
            tracing::warn!(request = id, error = %err, "signer did not sign");
            Err(err)
        };
        match self.stage.respond(id, answer) {
            Delivery::Unknown => Err(LinkError::AnsweredFirst(id)),
            Delivery::KeptPending => {
                // A temporary failure (the signer's chain not yet caught up, say): ask again
                // shortly, while the node's call is still waiting.
                let stage = self.stage.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(RETRY_TEMPORARY).await;
                    stage.resend(id);
                });
                Ok(())
            }
            Delivery::Delivered | Delivery::NoWaiter => Ok(()),
        }
    }
}
