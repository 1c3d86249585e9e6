//! The stage: signing requests waiting for a signer.
//!
//! Every request gets an id and is handed to every attached signer; a signer that attaches
//! gets the backlog first, so requests are re-sent after a reconnect with the same id and
//! the same bytes (never a different request for the same commitment). The first answer
//! wins; later answers for the same id are refused as unknown.
//!
//! The node's threads wait on their request with a deadline. A request whose waiter gave up
//! stays staged: when a signer answers it later, the signer's state changes still reach the
//! store (the caller merges them before calling [`Stage::respond`]), so node-host never
//! loses track of what the signer signed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use skylight_proto::greenlight::HsmRequestContext;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// The most requests kept for waiters that gave up; beyond it the oldest are dropped.
const MAX_ABANDONED: usize = 1024;
/// How many requests may wait for one signer to take them; a signer this far behind (its
/// connection died without closing, say) is detached, and gets the backlog on reconnect.
const FEED: usize = 4096;

/// A request as handed to signers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    /// The request id signers answer with.
    pub request_id: u32,
    /// Peer and channel the request is about; `None` for node-level requests.
    pub context: Option<HsmRequestContext>,
    /// The signer protocol message.
    pub raw: Vec<u8>,
}

/// Why a request got no signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerError {
    /// The signer refused on policy; the reason is the signer's.
    #[error("the signer refused: {0}")]
    Refused(String),
    /// No signer answered in time, or it failed for a reason that may pass.
    #[error("no signature yet: {0}")]
    Unavailable(String),
}

impl SignerError {
    /// Classifies a signer's error text: VLS marks passing failures `Temporary`; anything
    /// else is a refusal.
    pub fn from_signer_text(text: &str) -> Self {
        let lower = text.trim_start().to_ascii_lowercase();
        if lower.starts_with("temporary") || lower.starts_with("temporarily") {
            SignerError::Unavailable(text.to_string())
        } else {
            SignerError::Refused(text.to_string())
        }
    }
}

/// What became of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Handed to the waiting thread.
    Delivered,
    /// The waiter had given up; the request is now done.
    NoWaiter,
    /// A temporary failure: the request stays staged for another try.
    KeptPending,
    /// No such staged request: answered already, or never issued.
    Unknown,
}

type Answer = Result<Vec<u8>, SignerError>;

/// Why calls fail once the stage is closed.
const CLOSED: &str = "node-host is stopping";

struct Pending {
    staged: Staged,
    /// When it was staged: how long signers take is a metric.
    since: std::time::Instant,
    waiter: Option<std_mpsc::SyncSender<Answer>>,
    abandoned: bool,
}

#[derive(Default)]
struct Inner {
    next_id: u32,
    pending: BTreeMap<u32, Pending>,
    signers: HashMap<u64, mpsc::Sender<Staged>>,
    next_session: u64,
    closed: bool,
}

/// The stage.
pub struct Stage {
    inner: Mutex<Inner>,
    /// How many signers are attached, for whoever waits on one coming or going.
    attached: watch::Sender<usize>,
    /// Counts answers delivered, so the node can retry signing LDK put off once a late
    /// answer is in (see [`Stage::watch_answers`]).
    answers: watch::Sender<u64>,
    /// How many requests wait for an answer, for whoever must tell that a signer is needed
    /// (see [`Stage::watch_waiting`]).
    waiting: watch::Sender<usize>,
}

impl Default for Stage {
    fn default() -> Self {
        Stage {
            inner: Mutex::default(),
            attached: watch::channel(0).0,
            answers: watch::channel(0).0,
            waiting: watch::channel(0).0,
        }
    }
}

/// The attached signers as they come and go (see [`Stage::watch_signers`]).
pub struct SignerWatch(watch::Receiver<usize>);

impl SignerWatch {
    /// How many signers are attached now; [`SignerWatch::changed`] waits for the next change
    /// after this.
    pub fn count(&mut self) -> usize {
        *self.0.borrow_and_update()
    }

    /// Waits until a signer is attached (at once if one is); `false` if `stop` comes first.
    pub async fn attached(&mut self, stop: &CancellationToken) -> bool {
        self.until(|n| n > 0, stop).await
    }

    /// Waits until no signer is attached (at once if none is); `false` if `stop` comes
    /// first.
    pub async fn detached(&mut self, stop: &CancellationToken) -> bool {
        self.until(|n| n == 0, stop).await
    }

    /// Waits for the number of attached signers to change.
    pub async fn changed(&mut self) {
        if self.0.changed().await.is_err() {
            // The stage is gone: nothing will change again.
            std::future::pending::<()>().await;
        }
    }

    async fn until(&mut self, wanted: impl Fn(usize) -> bool, stop: &CancellationToken) -> bool {
        tokio::select! {
            _ = stop.cancelled() => false,
            reached = self.0.wait_for(|n| wanted(*n)) => reached.is_ok(),
        }
    }
}

/// A staged request and where its answer arrives.
pub struct Ticket {
    /// The request id.
    pub request_id: u32,
    answer: std_mpsc::Receiver<Answer>,
}

impl Ticket {
    /// Waits at most `timeout` for the answer. On a tokio worker thread it tells the runtime
    /// it is blocking, so replies keep flowing.
    pub fn wait(&self, timeout: Duration) -> Option<Answer> {
        let wait = || self.answer.recv_timeout(timeout).ok();
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        }
    }

    /// The answer, if it has arrived.
    pub fn try_answer(&self) -> Option<Answer> {
        self.answer.try_recv().ok()
    }
}

/// An attached signer's feed of requests.
pub struct Attachment {
    /// Identifies the attachment for [`Stage::detach`].
    pub session: u64,
    /// Requests, the backlog first.
    pub requests: mpsc::Receiver<Staged>,
}

impl Stage {
    /// An empty stage.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes how many signers are attached now (called with the lock held, so counts
    /// are published in order).
    fn publish(&self, inner: &Inner) {
        self.attached.send_if_modified(|n| {
            let changed = *n != inner.signers.len();
            *n = inner.signers.len();
            changed
        });
    }

    /// Publishes how many requests wait (called with the lock held, as [`Stage::publish`]):
    /// those whose caller still waits or parked them, not those given up.
    fn publish_waiting(&self, inner: &Inner) {
        let waiting = inner.pending.values().filter(|p| !p.abandoned).count();
        self.waiting.send_if_modified(|n| {
            let changed = *n != waiting;
            *n = waiting;
            changed
        });
    }

    /// How many requests wait for an answer, as it changes: with none attached, the node
    /// raises `signer_needed` when this stays above zero for long enough.
    pub fn watch_waiting(&self) -> watch::Receiver<usize> {
        self.waiting.subscribe()
    }

    /// How many signers are attached, as it changes: the node waits on this for a signer
    /// to come (to start, to accept peers) or go (to drop peers), instead of polling.
    pub fn watch_signers(&self) -> SignerWatch {
        SignerWatch(self.attached.subscribe())
    }

    /// Stages a request and hands it to every attached signer.
    pub fn submit(&self, context: Option<HsmRequestContext>, raw: Vec<u8>) -> Ticket {
        let (tx, rx) = std_mpsc::sync_channel(1);
        let mut inner = self.lock();
        if inner.closed {
            let _ = tx.try_send(Err(SignerError::Unavailable(CLOSED.into())));
            return Ticket {
                request_id: 0,
                answer: rx,
            };
        }
        // Id 0 is left out: Greenlight's node sends its heartbeat as request 0. After a wrap,
        // ids still staged are skipped: an answer must never reach another request's waiter.
        loop {
            inner.next_id = inner.next_id.wrapping_add(1).max(1);
            if !inner.pending.contains_key(&inner.next_id) {
                break;
            }
        }
        let request_id = inner.next_id;
        tracing::trace!(request_id, kind = ?raw.get(..2), "staged");
        let staged = Staged {
            request_id,
            context,
            raw,
        };
        inner.signers.retain(|session, s| {
            let taken = s.try_send(staged.clone()).is_ok();
            if !taken {
                tracing::warn!(session, "a signer is not taking requests; detaching it");
            }
            taken
        });
        self.publish(&inner);
        inner.pending.insert(
            request_id,
            Pending {
                staged,
                since: std::time::Instant::now(),
                waiter: Some(tx),
                abandoned: false,
            },
        );
        self.publish_waiting(&inner);
        Ticket {
            request_id,
            answer: rx,
        }
    }

    /// Stages a request and waits for its answer at most `deadline`. Called from the node's
    /// threads; on a tokio worker thread it tells the runtime it is blocking, so replies
    /// keep flowing.
    pub fn call(
        &self,
        context: Option<HsmRequestContext>,
        raw: Vec<u8>,
        deadline: Duration,
    ) -> Result<Vec<u8>, SignerError> {
        let ticket = self.submit(context, raw);
        let id = ticket.request_id;
        match ticket.wait(deadline) {
            Some(answer) => answer,
            None => {
                self.abandon(id);
                Err(SignerError::Unavailable(format!(
                    "no signer answered request {id} within {} s",
                    deadline.as_secs()
                )))
            }
        }
    }

    /// Marks a request whose waiter gave up; bounds how many such requests are kept.
    fn abandon(&self, id: u32) {
        let mut inner = self.lock();
        if let Some(p) = inner.pending.get_mut(&id) {
            p.abandoned = true;
            p.waiter = None;
        }
        let abandoned: Vec<u32> = inner
            .pending
            .iter()
            .filter(|(_, p)| p.abandoned)
            .map(|(id, _)| *id)
            .collect();
        if abandoned.len() > MAX_ABANDONED {
            for id in &abandoned[..abandoned.len() - MAX_ABANDONED] {
                inner.pending.remove(id);
            }
        }
        self.publish_waiting(&inner);
    }

    /// Answers delivered so far, as the count changes: a waiter that parked its request
    /// (see `channel::calls`) learns here that its answer may be in.
    pub fn watch_answers(&self) -> watch::Receiver<u64> {
        self.answers.subscribe()
    }

    /// Attaches a signer: it receives every staged request, oldest first, then new ones.
    pub fn attach(&self) -> Attachment {
        let (tx, rx) = mpsc::channel(FEED);
        let mut inner = self.lock();
        // Under the lock, so no request can slip between the backlog and the live feed.
        for p in inner.pending.values() {
            let _ = tx.try_send(p.staged.clone());
        }
        inner.next_session += 1;
        let session = inner.next_session;
        inner.signers.insert(session, tx);
        self.publish(&inner);
        Attachment {
            session,
            requests: rx,
        }
    }

    /// Detaches a signer.
    pub fn detach(&self, session: u64) {
        let mut inner = self.lock();
        inner.signers.remove(&session);
        self.publish(&inner);
    }

    /// Whether the stage is closed (node-host stopping): no call will be answered again.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// How many signers are attached.
    pub fn signers(&self) -> usize {
        let mut inner = self.lock();
        inner.signers.retain(|_, s| !s.is_closed());
        self.publish(&inner);
        inner.signers.len()
    }

    /// How many requests are staged.
    #[cfg(any(test, feature = "testing"))]
    pub fn pending(&self) -> usize {
        self.lock().pending.len()
    }

    /// Whether `request_id` is staged (an answer for it would be accepted).
    #[cfg(any(test, feature = "testing"))]
    pub fn is_pending(&self, request_id: u32) -> bool {
        self.lock().pending.contains_key(&request_id)
    }

    /// The message of the request `request_id`, while it waits for an answer.
    pub fn pending_raw(&self, request_id: u32) -> Option<Vec<u8>> {
        self.lock()
            .pending
            .get(&request_id)
            .map(|p| p.staged.raw.clone())
    }

    /// Sends a staged request to every attached signer again (after a temporary failure);
    /// does nothing if it was answered or given up meanwhile.
    pub fn resend(&self, request_id: u32) {
        let mut inner = self.lock();
        let Some(staged) = inner
            .pending
            .get(&request_id)
            .filter(|p| !p.abandoned)
            .map(|p| p.staged.clone())
        else {
            return;
        };
        inner
            .signers
            .retain(|_, s| s.try_send(staged.clone()).is_ok());
        self.publish(&inner);
    }

    /// Closes the stage as node-host stops: every waiting call fails at once, as does any
    /// later one, so no thread stays blocked on a signer that will not be asked again.
    pub fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.signers.clear();
        self.publish(&inner);
        for (_, p) in std::mem::take(&mut inner.pending) {
            if let Some(w) = p.waiter {
                let _ = w.try_send(Err(SignerError::Unavailable(CLOSED.into())));
            }
        }
        self.publish_waiting(&inner);
    }

    /// Delivers a signer's answer. The caller must have stored the answer's state changes
    /// durably before calling this: from here the node may act on it.
    pub fn respond(&self, request_id: u32, answer: Answer) -> Delivery {
        let mut inner = self.lock();
        if matches!(answer, Err(SignerError::Unavailable(_))) {
            return if inner.pending.contains_key(&request_id) {
                Delivery::KeptPending
            } else {
                Delivery::Unknown
            };
        }
        let Some(pending) = inner.pending.remove(&request_id) else {
            return Delivery::Unknown;
        };
        self.publish_waiting(&inner);
        tracing::trace!(request_id, "answered");
        crate::usage::signing_answered(pending.since.elapsed(), answer.is_err());
        let delivery = match pending.waiter {
            Some(waiter) if waiter.try_send(answer).is_ok() => Delivery::Delivered,
            _ => Delivery::NoWaiter,
        };
        drop(inner);
        if delivery == Delivery::Delivered {
            self.answers.send_modify(|n| *n = n.wrapping_add(1));
        }
        delivery
    }
}

#[cfg(test)]
mod tests;
