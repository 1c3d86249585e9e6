//! Pairing sessions: a new device waits in `PairDevice` (with the nobody identity: it has
//! no certificate yet) until a device of some tenant approves it in `ApprovePairing`; that
//! tenant's signer then mints the new device's rune, and the scheduler signs its CSR.
//!
//! A session is known by its `device_id` (the new device's public key, hex) and lives for
//! [`SESSION_TTL`] at most; the scheduler keeps at most [`MAX_SESSIONS`] at once, so
//! strangers cannot fill its memory with sessions.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use skylight_proto::scheduler::{GetPairingDataResponse, PairDeviceRequest, PairDeviceResponse};
use tokio::sync::oneshot;

use crate::error::Error;

/// How long a new device waits for an approval.
pub const SESSION_TTL: Duration = Duration::from_secs(300);
/// The most sessions open at once.
pub const MAX_SESSIONS: usize = 1024;

/// What completes a session: the new device's credentials, or why not.
pub type Outcome = Result<PairDeviceResponse, Error>;

struct Session {
    request: PairDeviceRequest,
    opened: Instant,
    /// Taken by the approval that completes the session.
    done: Option<oneshot::Sender<Outcome>>,
}

/// The open sessions.
#[derive(Default)]
pub struct Pairings {
    sessions: Mutex<HashMap<String, Session>>,
}

impl Pairings {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, s| s.opened.elapsed() < SESSION_TTL && s.done.is_some());
        sessions
    }

    /// Opens the session of `request`; the receiver gets its outcome.
    pub fn open(&self, request: PairDeviceRequest) -> Result<oneshot::Receiver<Outcome>, Error> {
        let mut sessions = self.lock();
        if sessions.contains_key(&request.device_id) {
            return Err(Error::AlreadyExists(
                "a pairing for this device is already waiting for approval".into(),
            ));
        }
        if sessions.len() >= MAX_SESSIONS {
            return Err(Error::ResourceExhausted(
                "too many pairings are waiting; try again in a few minutes".into(),
            ));
        }
        let (tx, rx) = oneshot::channel();
        sessions.insert(
            request.device_id.clone(),
            Session {
                request,
                opened: Instant::now(),
                done: Some(tx),
            },
        );
        Ok(rx)
    }

    /// What the new device asked for, shown to the approving device.
    pub fn data(&self, device_id: &str) -> Option<GetPairingDataResponse> {
        self.lock().get(device_id).map(|s| GetPairingDataResponse {
            device_id: s.request.device_id.clone(),
            csr: s.request.csr.clone(),
            device_name: s.request.device_name.clone(),
            description: s.request.description.clone(),
            restrictions: s.request.restrictions.clone(),
        })
    }

    /// The session's request, if it is still waiting.
    pub fn request(&self, device_id: &str) -> Option<PairDeviceRequest> {
        self.lock().get(device_id).map(|s| s.request.clone())
    }

    /// Completes the session of `device_id` with `outcome`; `false` if it is gone.
    pub fn complete(&self, device_id: &str, outcome: Outcome) -> bool {
        let done = self
            .lock()
            .remove(device_id)
            .and_then(|mut s| s.done.take());
        done.is_some_and(|tx| tx.send(outcome).is_ok())
    }

    /// The new device stopped waiting: its session goes.
    pub fn close(&self, device_id: &str) {
        self.lock().remove(device_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: &str) -> PairDeviceRequest {
        PairDeviceRequest {
            device_id: id.into(),
            device_name: "phone".into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_session_is_shown_then_completed_once_and_a_second_for_the_same_device_waits_its_turn()
     {
        let p = Pairings::default();
        let rx = p.open(request("04ab")).unwrap();
        assert!(matches!(
            p.open(request("04ab")),
            Err(Error::AlreadyExists(_))
        ));
        assert_eq!(p.data("04ab").unwrap().device_name, "phone");
        assert!(p.data("04cd").is_none());
        assert!(p.complete("04ab", Err(Error::PermissionDenied("no".into()))));
        assert!(matches!(rx.await.unwrap(), Err(Error::PermissionDenied(_))));
        assert!(p.data("04ab").is_none(), "a completed session is gone");
        assert!(!p.complete("04ab", Err(Error::PermissionDenied("again".into()))));
        // Closed by its device: gone too.
        let _rx = p.open(request("04ab")).unwrap();
        p.close("04ab");
        assert!(p.data("04ab").is_none());
    }
}
