//! The proxy: the node's signer calls become staged requests.
//!
//! `vls-protocol-client` turns LDK's signer traits into VLS protocol messages and hands them
//! to a [`Transport`]; this transport stages them for the tenant's signer and waits, with a
//! deadline, for the answer. A refusal on policy is told apart from a temporary failure:
//! the client can only return an opaque error, so the signer's reason is logged here and
//! kept as the last refusal for whoever must report it (a Pay call, say).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use skylight_proto::greenlight::HsmRequestContext;
use vls_protocol::model::PubKey;
use vls_protocol_client::{Error, Transport};

use crate::signer_link::stage::{SignerError, Stage};

/// Signer calls over the stage.
pub struct StageTransport {
    stage: Arc<Stage>,
    deadline: Duration,
    last_refusal: Mutex<Option<String>>,
}

impl StageTransport {
    /// Calls wait at most `deadline` for a signer.
    pub fn new(stage: Arc<Stage>, deadline: Duration) -> Self {
        StageTransport {
            stage,
            deadline,
            last_refusal: Mutex::new(None),
        }
    }

    /// Whether node-host is stopping: no signer will answer again.
    pub fn closed(&self) -> bool {
        self.stage.is_closed()
    }

    /// The signer's reason for the most recent refusal, taken.
    pub fn take_refusal(&self) -> Option<String> {
        self.last_refusal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    fn request(&self, context: Option<HsmRequestContext>, raw: Vec<u8>) -> Result<Vec<u8>, Error> {
        match self.stage.call(context, raw, self.deadline) {
            Ok(reply) => Ok(reply),
            Err(SignerError::Unavailable(why)) => {
                tracing::warn!(%why, "no signature yet");
                Err(Error::TransportTransient)
            }
            Err(SignerError::Refused(reason)) => {
                tracing::warn!(%reason, "the signer refused");
                *self.last_refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
                Err(Error::Transport)
            }
        }
    }
}

impl Transport for StageTransport {
    fn node_call(&self, message: Vec<u8>) -> Result<Vec<u8>, Error> {
        self.request(None, message)
    }

    fn call(&self, dbid: u64, peer_id: PubKey, message: Vec<u8>) -> Result<Vec<u8>, Error> {
        let context = HsmRequestContext {
            node_id: peer_id.0.to_vec(),
            dbid,
            capabilities: 0,
        };
        self.request(Some(context), message)
    }
}
