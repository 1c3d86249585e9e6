//! `greenlight.Node`'s signer plumbing: `StreamHsmRequests` and `RespondHsmRequest`.
//!
//! A signer attaches with `StreamHsmRequests` and receives every staged request. The first
//! request on a stream carries the whole signer state; later ones carry only what changed
//! since. An answer's state changes are merged durably before the answer is released to
//! the node; if they cannot be stored, the answer is refused and stays unanswered.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use skylight_proto::greenlight::{Empty, HsmRequest, HsmResponse};
use tokio_stream::Stream;
use tonic::{Request, Status};

use crate::signed_requests::Verifier;
use crate::signer_state::SignerState;
use crate::stage::{Delivery, SignerError, Stage};

/// The key of VLS's last-writer record in the state.
const WRITER_KEY: &str = "_WRITER";

/// What one attached stream's signer already has: the versions sent to it or received
/// from its device.
type Known = Arc<Mutex<BTreeMap<String, u64>>>;

/// The signer side of the node server.
#[derive(Clone)]
pub struct HsmService {
    node_id: [u8; 33],
    stage: Arc<Stage>,
    state: Arc<SignerState>,
    /// Attached streams by session: their device and what their signer already has.
    streams: Arc<Mutex<HashMap<u64, (String, Known)>>>,
    /// Recent signed client requests, shipped with each signing request.
    verifier: Arc<Verifier>,
}

/// A stream of requests for one signer.
pub type RequestStream = Pin<Box<dyn Stream<Item = Result<HsmRequest, Status>> + Send>>;

impl HsmService {
    /// Serves signers of `node_id` from `stage` and `state`.
    pub fn new(
        node_id: [u8; 33],
        stage: Arc<Stage>,
        state: Arc<SignerState>,
        verifier: Arc<Verifier>,
    ) -> Self {
        HsmService {
            node_id,
            stage,
            state,
            streams: Arc::default(),
            verifier,
        }
    }

    /// Only this tenant's devices may sign: TLS already trusts only the tenant's CA; this
    /// also checks the certificate names a device of this node. Returns the device name.
    pub fn check_caller<T>(&self, req: &Request<T>) -> Result<String, Status> {
        crate::caller::tenant_device(req, &self.node_id)
    }

    /// `StreamHsmRequests`.
    pub fn stream_hsm_requests(&self, req: Request<Empty>) -> Result<RequestStream, Status> {
        let device = self.check_caller(&req)?;
        let mut attachment = self.stage.attach();
        let state = self.state.clone();
        let stage = self.stage.clone();
        let known: Known = Arc::default();
        let verifier = self.verifier.clone();
        let streams = self.streams.clone();
        lock(&streams).insert(attachment.session, (device.clone(), known.clone()));
        tracing::info!(session = attachment.session, %device, "signer attached");
        let stream = async_stream_of(move |tx| async move {
            loop {
                // A signer that goes away must stop counting as attached even when no
                // request is coming: watch for the stream closing too.
                let staged = tokio::select! {
                    staged = attachment.requests.recv() => staged,
                    () = tx.closed() => None,
                };
                let Some(staged) = staged else { break };
                // Only what this signer does not have yet: everything on the first request.
                let signer_state = state.changes_since(&mut lock(&known));
                let request = HsmRequest {
                    request_id: staged.request_id,
                    context: staged.context,
                    raw: staged.raw,
                    signer_state,
                    // What devices asked for lately: the signer matches requests against it.
                    requests: crate::faults::signed_requests(verifier.recent()),
                };
                if tx.send(Ok(request)).await.is_err() {
                    break;
                }
            }
            stage.detach(attachment.session);
            lock(&streams).remove(&attachment.session);
            tracing::info!(session = attachment.session, "signer detached");
        });
        Ok(stream)
    }

    /// `RespondHsmRequest`.
    pub fn respond_hsm_request(&self, req: Request<HsmResponse>) -> Result<Empty, Status> {
        let device = self.check_caller(&req)?;
        let resp = req.into_inner();
        if !self.stage.is_pending(resp.request_id) {
            return Err(Status::not_found(format!(
                "request {} is not waiting for an answer (answered already, or never sent)",
                resp.request_id
            )));
        }
        // Durably first: the node must never act on an answer whose state it could lose.
        if !resp.signer_state.is_empty() {
            let report = self.state.merge(&resp.signer_state).map_err(|e| {
                tracing::error!(error = %e, request = resp.request_id, "cannot store signer state; answer refused");
                Status::unavailable("the node could not store the signer's state; the request stays open")
            })?;
            // The writer record is the signer's own bookkeeping (which device wrote last); a
            // conflict anywhere else means the answer was computed from a state the node
            // does not hold, and acting on it could contradict what it does hold.
            let real: Vec<&String> = report
                .conflicting_keys
                .iter()
                .filter(|k| k.as_str() != WRITER_KEY)
                .collect();
            if !real.is_empty() {
                tracing::warn!(request = resp.request_id, keys = ?real, "signer answered from a state the node does not hold; answer refused");
                return Err(Status::failed_precondition(format!(
                    "the answer's state conflicts with the node's ({} entries); the request stays open and the node's state wins",
                    real.len()
                )));
            }
            // The answering device has these entries: never echo them back to it. Only when
            // the device has one stream: with two, which one answered is unknown.
            let streams = lock(&self.streams);
            let of_device: Vec<&Known> = streams
                .values()
                .filter(|(dev, _)| *dev == device)
                .map(|(_, k)| k)
                .collect();
            if let [known] = of_device.as_slice() {
                let mut known = lock(known);
                for e in &resp.signer_state {
                    let v = known.entry(e.key.clone()).or_default();
                    *v = (*v).max(e.version);
                }
            }
        }
        let answer = if resp.error.is_empty() {
            Ok(resp.raw)
        } else {
            let err = SignerError::from_signer_text(&resp.error);
            tracing::warn!(request = resp.request_id, error = %err, "signer did not sign");
            Err(err)
        };
        match self.stage.respond(resp.request_id, answer) {
            Delivery::Unknown => Err(Status::not_found(format!(
                "request {} was answered by another signer first",
                resp.request_id
            ))),
            Delivery::KeptPending => {
                // A temporary failure (the signer's chain not yet caught up, say): ask again
                // shortly, while the node's call is still waiting.
                let (stage, id) = (self.stage.clone(), resp.request_id);
                tokio::spawn(async move {
                    tokio::time::sleep(RETRY_TEMPORARY).await;
                    stage.resend(id);
                });
                Ok(Empty {})
            }
            _ => Ok(Empty {}),
        }
    }
}

/// How soon a request that failed temporarily is sent to the signers again.
pub const RETRY_TEMPORARY: std::time::Duration = std::time::Duration::from_millis(300);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A stream fed by a task, ending when the task ends.
fn async_stream_of<F, Fut>(task: F) -> RequestStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<HsmRequest, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(task(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
