//! Channel requests to the signer under LDK's asynchronous-signing contract.
//!
//! LDK 0.2 lets most channel-signer methods answer "not yet" (`Err`) and retries them with
//! the same arguments once the node calls `signer_unblocked`. So a request no signer can
//! answer now is *parked*: staged for the next signer, its ticket kept under the request's
//! bytes, and the method returns [`Outcome::Pending`]. When LDK asks again, the same bytes
//! find the parked ticket (never a second request for the same thing), and its answer if
//! it has arrived. The stage counts delivered answers; the node watches that count and
//! signers attaching, and calls `signer_unblocked` then.
//!
//! While a signer is attached a request is waited for (that is the fast path: no retry
//! round), but never past the deadline and never after the last signer left.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use skylight_proto::greenlight::HsmRequestContext;

use crate::signer_link::stage::{SignerError, Stage, Ticket};

/// How often a wait checks whether a signer is still attached.
const CHECK_EVERY: Duration = Duration::from_millis(100);
/// The most requests parked at once; beyond it the oldest are forgotten (LDK asks again,
/// and they are staged anew).
const MAX_PARKED: usize = 256;

/// What became of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The signer's reply.
    Answer(Vec<u8>),
    /// No answer yet: it is parked for the next signer.
    Pending,
    /// The signer refused, for this reason.
    Refused(String),
}

type Key = (Option<u64>, Vec<u8>);

/// Channel requests over the stage.
pub struct Calls {
    stage: Arc<Stage>,
    deadline: Duration,
    parked: Mutex<Parked>,
}

#[derive(Default)]
struct Parked {
    tickets: HashMap<Key, (Ticket, Origin)>,
    order: VecDeque<Key>,
}

/// Why a ticket is parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// LDK asked and was told "not yet".
    Asked,
    /// Sent ahead of LDK's asking (see [`Calls::prefetch`]).
    Ahead,
}

impl Calls {
    /// Requests over `stage`, waited for at most `deadline` while a signer is attached.
    pub fn new(stage: Arc<Stage>, deadline: Duration) -> Self {
        Calls {
            stage,
            deadline,
            parked: Mutex::default(),
        }
    }

    fn parked(&self) -> std::sync::MutexGuard<'_, Parked> {
        self.parked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether any request is parked.
    #[cfg(test)]
    fn any_parked(&self) -> bool {
        !self.parked().tickets.is_empty()
    }

    /// Asks for `raw` about channel `dbid` (`None`: a node-level request); parks it rather
    /// than wait when no signer can answer now.
    pub fn pendable(&self, dbid: Option<u64>, raw: Vec<u8>) -> Outcome {
        let key = (dbid, raw);
        let taken = self.parked().take(&key);
        let (ticket, origin) =
            taken.unwrap_or_else(|| (self.stage.submit(context(dbid), key.1.clone()), Origin::Asked));
        match self.wait(&ticket) {
            // Sent ahead, it may have reached the signer before what makes it valid
            // (another signer's order, say): a refusal then is asked again, now.
            Some(Err(SignerError::Refused(why))) if origin == Origin::Ahead => {
                tracing::debug!(%why, "a request sent ahead was refused; asking again");
                self.pendable(dbid, key.1)
            }
            Some(answer) => outcome(answer),
            None => {
                self.parked().put(key, ticket, origin);
                Outcome::Pending
            }
        }
    }

    /// Sends `raw` now, before LDK asks for it, so that its answer comes right behind the
    /// request just submitted instead of one more round trip later; LDK's asking (through
    /// [`Calls::pendable`], same bytes) takes it. Nothing is sent if it is parked already.
    pub fn prefetch(&self, dbid: Option<u64>, raw: Vec<u8>) {
        let key = (dbid, raw);
        let mut parked = self.parked();
        if parked.tickets.contains_key(&key) {
            return;
        }
        let ticket = self.stage.submit(context(dbid), key.1.clone());
        parked.put(key, ticket, Origin::Ahead);
    }

    /// Asks for `raw` (a node-level request) only if a signer is attached now, waiting for
    /// it as [`Calls::wait`] does; nothing is staged for a later signer. For requests whose
    /// bytes change each time they are retried (a sweep's locktime is the height), where a
    /// parked request would only be signed stale.
    pub fn if_attached(&self, raw: Vec<u8>) -> Result<Vec<u8>, SignerError> {
        if self.stage.signers() == 0 {
            return Err(SignerError::Unavailable("no signer is attached".into()));
        }
        let ticket = self.stage.submit(None, raw);
        self.wait(&ticket).unwrap_or_else(|| {
            Err(SignerError::Unavailable(
                "the signer did not answer in time".into(),
            ))
        })
    }

    /// Stages `raw` without waiting; the answer comes back through [`Calls::pendable`] with
    /// the same bytes, or through `ticket`.
    pub fn submit(&self, dbid: Option<u64>, raw: Vec<u8>) -> Ticket {
        self.stage.submit(context(dbid), raw)
    }

    /// Waits for `ticket` while a signer is attached, at most the deadline; `None` if no
    /// answer came (no signer, the last one left, the deadline passed, or node-host stops).
    pub fn wait(&self, ticket: &Ticket) -> Option<Result<Vec<u8>, SignerError>> {
        let started = Instant::now();
        loop {
            if let Some(answer) = ticket.try_answer() {
                return unless_closing(answer);
            }
            if self.stage.signers() == 0 || started.elapsed() >= self.deadline {
                return None;
            }
            if let Some(answer) = ticket.wait(CHECK_EVERY) {
                return unless_closing(answer);
            }
        }
    }
}

impl Parked {
    fn take(&mut self, key: &Key) -> Option<(Ticket, Origin)> {
        let t = self.tickets.remove(key)?;
        self.order.retain(|k| k != key);
        Some(t)
    }

    fn put(&mut self, key: Key, ticket: Ticket, origin: Origin) {
        self.order.push_back(key.clone());
        self.tickets.insert(key, (ticket, origin));
        while self.order.len() > MAX_PARKED {
            if let Some(old) = self.order.pop_front() {
                self.tickets.remove(&old);
            }
        }
    }
}

/// A stage that closes answers its waiters "unavailable": for a parked request that is no
/// answer at all.
fn unless_closing(
    answer: Result<Vec<u8>, SignerError>,
) -> Option<Result<Vec<u8>, SignerError>> {
    match answer {
        Err(SignerError::Unavailable(_)) => None,
        a => Some(a),
    }
}

/// Channel messages name the channel by its dbid alone: the peer id is left zero, as the
/// signer derives channels from the dbid (upstream's convention, kept so channels stay the
/// same channel on the signer).
fn context(dbid: Option<u64>) -> Option<HsmRequestContext> {
    dbid.map(|dbid| HsmRequestContext {
        node_id: vec![0; 33],
        dbid,
        capabilities: 0,
    })
}

/// An answer as an outcome.
pub fn outcome(answer: Result<Vec<u8>, SignerError>) -> Outcome {
    match answer {
        Ok(raw) => Outcome::Answer(raw),
        Err(SignerError::Refused(why)) => Outcome::Refused(why),
        Err(SignerError::Unavailable(_)) => Outcome::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer_link::stage::Delivery;

    #[test]
    fn with_no_signer_a_request_is_parked_and_its_late_answer_found_by_the_same_bytes() {
        let stage = Arc::new(Stage::new());
        let calls = Calls::new(stage.clone(), Duration::from_secs(5));
        assert_eq!(calls.pendable(Some(1), vec![1, 2]), Outcome::Pending);
        assert!(calls.any_parked());
        // A signer attaches and gets the parked request from the backlog.
        let mut a = stage.attach();
        let staged = a.requests.try_recv().unwrap();
        assert_eq!(staged.raw, vec![1, 2]);
        assert_eq!(stage.respond(staged.request_id, Ok(vec![9])), Delivery::Delivered);
        // LDK asks again: the answer, and no second request staged.
        assert_eq!(calls.pendable(Some(1), vec![1, 2]), Outcome::Answer(vec![9]));
        assert!(a.requests.try_recv().is_err());
        assert!(!calls.any_parked());
    }

    #[test]
    fn asking_again_before_the_answer_stages_nothing_new() {
        let stage = Arc::new(Stage::new());
        let calls = Calls::new(stage.clone(), Duration::from_secs(5));
        assert_eq!(calls.pendable(Some(1), vec![7]), Outcome::Pending);
        assert_eq!(calls.pendable(Some(1), vec![7]), Outcome::Pending);
        assert_eq!(stage.pending(), 1);
        // Another channel's identical bytes are another request.
        assert_eq!(calls.pendable(Some(2), vec![7]), Outcome::Pending);
        assert_eq!(stage.pending(), 2);
    }

    #[test]
    fn a_request_sent_ahead_is_taken_by_the_asking_and_if_refused_asked_again() {
        let stage = Arc::new(Stage::new());
        let calls = Calls::new(stage.clone(), Duration::from_secs(5));
        let mut a = stage.attach();
        calls.prefetch(Some(1), vec![6]);
        calls.prefetch(Some(1), vec![6]);
        let staged = a.requests.try_recv().unwrap();
        assert!(a.requests.try_recv().is_err(), "sent once");
        stage.respond(staged.request_id, Ok(vec![60]));
        assert_eq!(calls.pendable(Some(1), vec![6]), Outcome::Answer(vec![60]));
        assert!(a.requests.try_recv().is_err(), "nothing new staged");

        // Refused (it overtook what makes it valid): the asking sends it again.
        calls.prefetch(Some(1), vec![8]);
        let early = a.requests.try_recv().unwrap();
        stage.respond(early.request_id, Err(SignerError::Refused("too early".into())));
        let s = stage.clone();
        let answerer = std::thread::spawn(move || {
            let again = a.requests.blocking_recv().unwrap();
            assert_eq!(again.raw, vec![8]);
            s.respond(again.request_id, Ok(vec![80]));
        });
        assert_eq!(calls.pendable(Some(1), vec![8]), Outcome::Answer(vec![80]));
        answerer.join().unwrap();
    }

    #[test]
    fn a_refusal_is_told_apart_and_not_parked() {
        let stage = Arc::new(Stage::new());
        let calls = Calls::new(stage.clone(), Duration::from_secs(5));
        let mut a = stage.attach();
        let s = stage.clone();
        let answerer = std::thread::spawn(move || {
            let staged = a.requests.blocking_recv().unwrap();
            s.respond(staged.request_id, Err(SignerError::Refused("policy-x".into())));
        });
        assert_eq!(
            calls.pendable(Some(1), vec![3]),
            Outcome::Refused("policy-x".into())
        );
        answerer.join().unwrap();
        assert!(!calls.any_parked());
    }

    #[test]
    fn a_closing_stage_leaves_the_request_pending_not_failed() {
        let stage = Arc::new(Stage::new());
        let calls = Calls::new(stage.clone(), Duration::from_secs(5));
        let _a = stage.attach();
        let s = stage.clone();
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            s.close();
        });
        assert_eq!(calls.pendable(Some(1), vec![4]), Outcome::Pending);
        closer.join().unwrap();
    }

    #[test]
    fn a_signer_leaving_ends_the_wait() {
        let stage = Arc::new(Stage::new());
        let calls = Calls::new(stage.clone(), Duration::from_secs(60));
        let a = stage.attach();
        let s = stage.clone();
        let leaver = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            s.detach(a.session);
        });
        assert_eq!(calls.pendable(Some(1), vec![5]), Outcome::Pending);
        leaver.join().unwrap();
    }
}
