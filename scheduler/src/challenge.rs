//! Single-use challenges for Register and Recover.
//!
//! A challenge is bound to its scope and node id and expires. It is consumed the first time
//! it is presented, whether the proof then succeeds or not, so a captured or guessed
//! challenge can be tried once at most. Challenges live in memory: they last seconds, and a
//! scheduler restart only means clients ask again.

use std::collections::HashMap;
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
    outstanding: Mutex<HashMap<[u8; 32], Outstanding>>,
}

impl ChallengeBook {
    /// Challenges live `ttl`; at most `max_outstanding` exist at once (a bound on memory a
    /// flood of GetChallenge can take).
    pub fn new(ttl: Duration, max_outstanding: usize) -> Self {
        ChallengeBook {
            ttl,
            max_outstanding,
            outstanding: Mutex::new(HashMap::new()),
        }
    }

    /// A new challenge for `scope` and `node_id`.
    pub fn issue(&self, scope: ChallengeScope, node_id: [u8; 33]) -> Result<[u8; 32], Error> {
        let mut challenge = [0u8; 32];
        getrandom::getrandom(&mut challenge)
            .map_err(|e| Error::Internal(format!("random source: {e}")))?;
        let now = Instant::now();
        let mut book = self.outstanding.lock().unwrap_or_else(|p| p.into_inner());
        if book.len() >= self.max_outstanding {
            book.retain(|_, c| c.expires > now);
            if book.len() >= self.max_outstanding {
                return Err(Error::ResourceExhausted(
                    "too many challenges are outstanding; try again in a minute".into(),
                ));
            }
        }
        book.insert(
            challenge,
            Outstanding {
                scope,
                node_id,
                expires: now + self.ttl,
            },
        );
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
        let taken = self
            .outstanding
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        let Some(c) = taken else {
            return Err(Error::Unauthenticated(
                "this challenge was never issued or has already been used; call GetChallenge again"
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
        assert!(matches!(err, Error::Unauthenticated(m) if m.contains("already been used")));
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
    fn outstanding_challenges_are_bounded() {
        let book = ChallengeBook::new(Duration::from_secs(60), 2);
        book.issue(ChallengeScope::Register, NODE).unwrap();
        book.issue(ChallengeScope::Register, NODE).unwrap();
        assert!(matches!(
            book.issue(ChallengeScope::Register, NODE),
            Err(Error::ResourceExhausted(_))
        ));
    }
}
