//! Single-use challenges for Register and Recover.
//!
//! A challenge is bound to its scope and node id and expires. It is consumed the first time
//! it is presented, whether the proof then succeeds or not, so a captured or guessed
//! challenge can be tried once at most. Challenges live in memory: they last seconds, and a
//! scheduler restart only means clients ask again.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use skylight_proto::scheduler::ChallengeScope;

use crate::error::Error;

struct Outstanding {
    scope: ChallengeScope,
    node_id: [u8; 33],
    expires: Instant,
}

/// The outstanding challenges.
pub struct ChallengeBook {
    ttl: Duration,
    max_outstanding: usize,
    book: Mutex<Book>,
}

/// Challenges by value, and their issue order (which, with one TTL for all, is also their
/// expiry order).
#[derive(Default)]
struct Book {
    by_value: HashMap<[u8; 32], Outstanding>,
    order: VecDeque<([u8; 32], Instant)>,
}

impl Book {
    /// Drops expired challenges, and the oldest ones while more than `max` remain.
    fn trim(&mut self, now: Instant, max: usize) {
        while let Some((value, expires)) = self.order.front().copied() {
            let live = self.by_value.contains_key(&value);
            if live && expires > now && self.by_value.len() <= max {
                break;
            }
            self.order.pop_front();
            if live
                && self
                    .by_value
                    .get(&value)
                    .is_some_and(|c| c.expires == expires)
            {
                self.by_value.remove(&value);
            }
        }
    }
}

impl ChallengeBook {
    /// Challenges live `ttl`; at most `max_outstanding` exist at once, the oldest making
    /// way for new ones. That bounds the memory a flood of GetChallenge can take without
    /// locking honest clients out: they redeem within a round trip, long before a flood of
    /// `max_outstanding` newer challenges could push theirs out.
    pub fn new(ttl: Duration, max_outstanding: usize) -> Self {
        ChallengeBook {
            ttl,
            max_outstanding: max_outstanding.max(1),
            book: Mutex::new(Book::default()),
        }
    }

    /// A new challenge for `scope` and `node_id`.
    pub fn issue(&self, scope: ChallengeScope, node_id: [u8; 33]) -> Result<[u8; 32], Error> {
        let mut challenge = [0u8; 32];
        getrandom::getrandom(&mut challenge)
            .map_err(|e| Error::Internal(format!("random source: {e}")))?;
        let now = Instant::now();
        let expires = now + self.ttl;
        let mut book = self.book.lock().unwrap_or_else(|p| p.into_inner());
        // Trim before inserting, so the new challenge is never the one trimmed.
        book.trim(now, self.max_outstanding - 1);
        book.by_value.insert(
            challenge,
            Outstanding {
                scope,
                node_id,
                expires,
            },
        );
        book.order.push_back((challenge, expires));
        Ok(challenge)
    }

    /// Consumes `challenge`, checking it was issued for `scope` and `node_id` and has not
    /// expired.
    pub fn redeem(
        &self,
        challenge: &[u8],
        scope: ChallengeScope,
        node_id: &[u8; 33],
    ) -> Result<(), Error> {
        let key: [u8; 32] = challenge.try_into().map_err(|_| {
            Error::InvalidArgument(format!(
                "the challenge must be 32 bytes, got {}; call GetChallenge first",
                challenge.len()
            ))
        })?;
        // Removed before anything is checked: a challenge is good for one attempt.
        let taken = self
            .book
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_value
            .remove(&key);
        let Some(c) = taken else {
            return Err(Error::Unauthenticated(
                "this challenge is unknown, already used or long expired; call GetChallenge again"
                    .into(),
            ));
        };
        if c.expires <= Instant::now() {
            return Err(Error::Unauthenticated(format!(
                "this challenge expired (challenges last {} s); call GetChallenge again",
                self.ttl.as_secs()
            )));
        }
        if c.scope != scope {
            return Err(Error::Unauthenticated(format!(
                "this challenge was issued for {}, not {}; ask for a challenge with the right scope",
                c.scope.as_str_name(),
                scope.as_str_name()
            )));
        }
        if &c.node_id != node_id {
            return Err(Error::Unauthenticated(
                "this challenge was issued for another node id".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: [u8; 33] = [2; 33];

    #[test]
    fn a_challenge_redeems_once() {
        let book = ChallengeBook::new(Duration::from_secs(60), 10);
        let c = book.issue(ChallengeScope::Register, NODE).unwrap();
        book.redeem(&c, ChallengeScope::Register, &NODE).unwrap();
        let err = book
            .redeem(&c, ChallengeScope::Register, &NODE)
            .unwrap_err();
        assert!(matches!(err, Error::Unauthenticated(m) if m.contains("already used")));
    }

    #[test]
    fn scope_node_and_expiry_are_enforced() {
        let book = ChallengeBook::new(Duration::from_secs(60), 10);
        let c = book.issue(ChallengeScope::Register, NODE).unwrap();
        let err = book.redeem(&c, ChallengeScope::Recover, &NODE).unwrap_err();
        assert!(matches!(err, Error::Unauthenticated(m) if m.contains("REGISTER")));
        // Consumed by the failed attempt.
        assert!(book.redeem(&c, ChallengeScope::Register, &NODE).is_err());

        let c = book.issue(ChallengeScope::Recover, NODE).unwrap();
        assert!(book.redeem(&c, ChallengeScope::Recover, &[3; 33]).is_err());

        let short = ChallengeBook::new(Duration::ZERO, 10);
        let c = short.issue(ChallengeScope::Register, NODE).unwrap();
        let err = short
            .redeem(&c, ChallengeScope::Register, &NODE)
            .unwrap_err();
        assert!(matches!(err, Error::Unauthenticated(m) if m.contains("expired")));

        assert!(matches!(
            book.redeem(&[0; 5], ChallengeScope::Register, &NODE),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn outstanding_challenges_are_bounded_and_the_oldest_make_way() {
        let book = ChallengeBook::new(Duration::from_secs(60), 2);
        let first = book.issue(ChallengeScope::Register, NODE).unwrap();
        let second = book.issue(ChallengeScope::Register, NODE).unwrap();
        let third = book.issue(ChallengeScope::Register, NODE).unwrap();
        {
            let b = book.book.lock().unwrap();
            assert_eq!(b.by_value.len(), 2);
            assert!(b.order.len() <= 2);
        }
        assert!(
            book.redeem(&first, ChallengeScope::Register, &NODE)
                .is_err()
        );
        book.redeem(&second, ChallengeScope::Register, &NODE)
            .unwrap();
        book.redeem(&third, ChallengeScope::Register, &NODE)
            .unwrap();
    }
}
