//! Who may answer signing requests and change the stored signer state: only a holder of
//! the tenant's seed.
//!
//! Any device of the tenant may attach to the hsm stream (a phone that only calls the node,
//! an old device recovered elsewhere), and the first answer wins. Without this check such a
//! device could answer first with whatever it liked, and have node-host store state it
//! made up, tombstones included, over the node's only durable copy. So every answer must
//! be signed by the seed's state key, and every entry it carries too (see
//! [`skylight_client::state_key`]). node-host pins the state key the first time an answer
//! shows one the node key attested, durably, and takes no other key from then on.

use std::sync::{Arc, Mutex};

use lightning_signer::bitcoin::secp256k1::PublicKey;
use skylight_client::state_key::StateKey;
use skylight_proto::greenlight::HsmResponse;

use crate::store::signer_state::{SignerState, StateError};

/// Why an answer does not count.
#[derive(Debug, thiserror::Error)]
pub enum NotTheSigner {
    /// No proof at all: a signer that does not prove its seed (or not a signer).
    #[error(
        "the answer carries no proof that its signer holds this node's seed; a device without the seed may call the node but not answer its signing requests"
    )]
    NoProof,
    /// The proof's state key was not attested by this node's key.
    #[error("the answer's state key is not attested by this node's key: not this node's seed")]
    Unattested,
    /// Another state key than the one pinned.
    #[error("the answer is signed by another state key than this node's")]
    OtherKey,
    /// The answer's signature does not verify.
    #[error("the answer's signature does not verify under this node's state key")]
    BadSignature,
    /// A state entry not signed by the state key.
    #[error("signer state entry {0:?} is not signed by this node's state key")]
    ForeignEntry(String),
    /// The pinned key could not be read or stored.
    #[error(transparent)]
    Storage(#[from] StateError),
}

/// The tenant's seed, as node-host knows it: the node id, and the state key once pinned.
pub struct Authority {
    node_id: PublicKey,
    state: Arc<SignerState>,
    pinned: Mutex<Option<StateKey>>,
}

impl Authority {
    /// The authority for node `node_id`, with the key pinned in `state` (if any).
    pub fn new(node_id: PublicKey, state: Arc<SignerState>) -> Result<Self, StateError> {
        let pinned = match state.pinned_key()? {
            Some(pinned) => Some(
                StateKey::attested(&node_id, &pinned.key, &pinned.attestation)
                    .ok_or_else(|| StateError::damaged("the pinned state key"))?,
            ),
            None => None,
        };
        Ok(Authority {
            node_id,
            state,
            pinned: Mutex::new(pinned),
        })
    }

    /// Checks that `answer` to the request `request_raw`, and every state entry it carries,
    /// are the seed's; pins the state key (durably) on its first sight.
    pub fn check(&self, request_raw: &[u8], answer: &HsmResponse) -> Result<(), NotTheSigner> {
        let proof = answer
            .skylight_proof
            .as_ref()
            .ok_or(NotTheSigner::NoProof)?;
        let key = {
            let mut pinned = self.pinned.lock().unwrap_or_else(|p| p.into_inner());
            match *pinned {
                Some(key) if key.0.serialize()[..] == proof.state_key[..] => key,
                Some(_) => return Err(NotTheSigner::OtherKey),
                None => {
                    let key =
                        StateKey::attested(&self.node_id, &proof.state_key, &proof.attestation)
                            .ok_or(NotTheSigner::Unattested)?;
                    self.state.pin_key(&proof.state_key, &proof.attestation)?;
                    tracing::info!(state_key = %key.0, "pinned the tenant's state key");
                    *pinned = Some(key);
                    key
                }
            }
        };
        if !key.verify_answer(request_raw, answer) {
            return Err(NotTheSigner::BadSignature);
        }
        if let Some(e) = answer.signer_state.iter().find(|e| !key.verify_entry(e)) {
            return Err(NotTheSigner::ForeignEntry(e.key.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use lightning_signer::bitcoin::secp256k1::{Secp256k1, SecretKey};
    use skylight_client::state_key::StateSigner;
    use skylight_proto::greenlight::SignerStateEntry;

    use super::*;

    fn node(n: u8) -> (SecretKey, PublicKey) {
        let key = SecretKey::from_slice(&[n; 32]).unwrap();
        (key, key.public_key(&Secp256k1::signing_only()))
    }

    fn answer(signer: &StateSigner, entries: &[(&str, u64)]) -> HsmResponse {
        let mut a = HsmResponse {
            request_id: 1,
            raw: vec![9],
            ..Default::default()
        };
        for (key, version) in entries {
            let mut e = SignerStateEntry {
                version: *version,
                key: key.to_string(),
                value: b"{}".to_vec(),
                signature: vec![],
            };
            signer.sign(&mut e);
            a.signer_state.push(e);
        }
        signer.prove(b"req", &mut a);
        a
    }

    #[test]
    fn the_first_attested_key_is_pinned_across_a_restart_and_no_other_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let kv = crate::store::kv::redb::RedbKv::shared(&dir.path().join("s.redb")).unwrap();
        let (node_key, node_id) = node(5);
        let seed = StateSigner::new(&[1; 32], &node_key);
        {
            let state = Arc::new(SignerState::open(kv.clone()).unwrap());
            let a = Authority::new(node_id, state).unwrap();
            a.check(b"req", &answer(&seed, &[("channel/x", 3)]))
                .unwrap();
        }
        let state = Arc::new(SignerState::open(kv).unwrap());
        let a = Authority::new(node_id, state).unwrap();
        a.check(b"req", &answer(&seed, &[])).unwrap();
        // Even a key the node key attested (it cannot happen for one seed, but the pin is
        // what counts) is refused once another is pinned.
        let other = StateSigner::new(&[2; 32], &node_key);
        assert!(matches!(
            a.check(b"req", &answer(&other, &[])),
            Err(NotTheSigner::OtherKey)
        ));
    }

    #[test]
    fn a_device_without_the_seed_cannot_answer_or_store_state() {
        let dir = tempfile::tempdir().unwrap();
        let kv = crate::store::kv::redb::RedbKv::shared(&dir.path().join("s.redb")).unwrap();
        let state = Arc::new(SignerState::open(kv).unwrap());
        let (node_key, node_id) = node(5);
        let (stranger_node, _) = node(6);
        let a = Authority::new(node_id, state.clone()).unwrap();
        let mut bare = HsmResponse {
            request_id: 1,
            raw: vec![9],
            ..Default::default()
        };
        assert!(matches!(
            a.check(b"req", &bare),
            Err(NotTheSigner::NoProof)
        ));
        // Its own key, attested by a node key that is not this node's.
        let stranger = StateSigner::new(&[3; 32], &stranger_node);
        stranger.prove(b"req", &mut bare);
        assert!(matches!(
            a.check(b"req", &bare),
            Err(NotTheSigner::Unattested)
        ));
        assert_eq!(state.pinned_key().unwrap(), None, "nothing pinned");

        let seed = StateSigner::new(&[1; 32], &node_key);
        a.check(b"req", &answer(&seed, &[])).unwrap();
        // The seed's proof, on an answer changed after it was signed.
        let mut changed = answer(&seed, &[]);
        changed.raw = vec![8];
        assert!(matches!(
            a.check(b"req", &changed),
            Err(NotTheSigner::BadSignature)
        ));
        // A valid answer carrying an entry it did not sign.
        let mut smuggled = answer(&seed, &[("channel/x", 4)]);
        smuggled.signer_state[0].version = u64::MAX;
        seed.prove(b"req", &mut smuggled);
        assert!(matches!(
            a.check(b"req", &smuggled),
            Err(NotTheSigner::ForeignEntry(k)) if k == "channel/x"
        ));
    }
}
