//! The seed's state-signing key: what only a holder of the seed can sign, and what anyone
//! holding the node id can check.
//!
//! The node stores the signer's state and ships it back. Every entry the signer produces is
//! signed with a key derived from the seed, so a node cannot forge one, and every answer a
//! signer gives is signed with it too, so a device that has no seed (a phone that only
//! calls the node, an old device recovered elsewhere) cannot answer signing requests or
//! change the stored state. node-host learns the key from the first answer that carries an
//! *attestation*: the node key's signature over the state key. Only the seed signs either,
//! so there is no moment at which a device without it could pin a key of its own.
//!
//! - Entries follow Greenlight's scheme: ECDSA over sha256("greenlight/state-signing/v1\0"
//!   ‖ u32be(len key) ‖ key ‖ u64be(version) ‖ u32be(len value) ‖ value), with the key
//!   HKDF-SHA256(seed, "greenlight/state-signing/v1").
//! - The attestation (Skylight's): ECDSA by the node key over
//!   sha256("skylight/state-key/v1\0" ‖ state key (33 bytes)).
//! - An answer (Skylight's): ECDSA by the state key over sha256("skylight/answer/v1\0" ‖
//!   u32be(request id) ‖ sha256(the request's raw message) ‖ u32be(len raw) ‖ raw ‖
//!   u32be(len error) ‖ error). The request's bytes are in it, so an answer cannot be moved
//!   to another request that happens to get the same id.

use bitcoin::hashes::{Hash, HashEngine, sha256};
use bitcoin::secp256k1::{Message, PublicKey, Secp256k1, SecretKey, ecdsa::Signature};
use lightning_signer::util::crypto_utils::hkdf_sha256;
use skylight_proto::greenlight::{AnswerProof, HsmResponse, SignerStateEntry};

const ENTRY_DOMAIN: &[u8] = b"greenlight/state-signing/v1";
const ATTESTATION_DOMAIN: &[u8] = b"skylight/state-key/v1";
const ANSWER_DOMAIN: &[u8] = b"skylight/answer/v1";

fn engine(domain: &[u8]) -> sha256::HashEngine {
    let mut e = sha256::Hash::engine();
    e.input(domain);
    e.input(&[0]);
    e
}

fn finish(e: sha256::HashEngine) -> Message {
    Message::from_digest(sha256::Hash::from_engine(e).to_byte_array())
}

fn with_len(e: &mut sha256::HashEngine, bytes: &[u8]) {
    e.input(&(bytes.len() as u32).to_be_bytes());
    e.input(bytes);
}

fn entry_digest(entry: &SignerStateEntry) -> Message {
    let mut e = engine(ENTRY_DOMAIN);
    with_len(&mut e, entry.key.as_bytes());
    e.input(&entry.version.to_be_bytes());
    with_len(&mut e, &entry.value);
    finish(e)
}

fn attestation_digest(state_key: &PublicKey) -> Message {
    let mut e = engine(ATTESTATION_DOMAIN);
    e.input(&state_key.serialize());
    finish(e)
}

fn answer_digest(request_raw: &[u8], answer: &HsmResponse) -> Message {
    let mut e = engine(ANSWER_DOMAIN);
    e.input(&answer.request_id.to_be_bytes());
    e.input(sha256::Hash::hash(request_raw).as_byte_array());
    with_len(&mut e, &answer.raw);
    with_len(&mut e, answer.error.as_bytes());
    finish(e)
}

fn verifies(digest: &Message, signature: &[u8], key: &PublicKey) -> bool {
    Signature::from_compact(signature).is_ok_and(|sig| {
        Secp256k1::verification_only()
            .verify_ecdsa(digest, &sig, key)
            .is_ok()
    })
}

/// The public half: checks entries and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateKey(pub PublicKey);

impl StateKey {
    /// The key `attestation` shows the node `node_id` signed for: `None` unless both are
    /// well formed and the node key signed this state key.
    pub fn attested(node_id: &PublicKey, state_key: &[u8], attestation: &[u8]) -> Option<Self> {
        let key = PublicKey::from_slice(state_key).ok()?;
        verifies(&attestation_digest(&key), attestation, node_id).then_some(StateKey(key))
    }

    /// Whether `entry` carries this key's valid signature.
    pub fn verify_entry(&self, entry: &SignerStateEntry) -> bool {
        verifies(&entry_digest(entry), &entry.signature, &self.0)
    }

    /// Whether `answer` to the request `request_raw` carries this key's valid signature.
    pub fn verify_answer(&self, request_raw: &[u8], answer: &HsmResponse) -> bool {
        answer
            .skylight_proof
            .as_ref()
            .is_some_and(|p| verifies(&answer_digest(request_raw, answer), &p.signature, &self.0))
    }
}

/// The secret half, held by the signer.
pub struct StateSigner {
    key: SecretKey,
    public: StateKey,
    /// The node key's signature over `public`, made once.
    attestation: [u8; 64],
}

impl StateSigner {
    /// The state key of `seed`, attested by `node_key` (the node key of the same seed).
    pub fn new(seed: &[u8; 32], node_key: &SecretKey) -> Self {
        let bytes = hkdf_sha256(seed, ENTRY_DOMAIN, &[]);
        let key = SecretKey::from_slice(&bytes).expect("an HKDF output is a valid key");
        let secp = Secp256k1::signing_only();
        let public = key.public_key(&secp);
        let attestation = secp
            .sign_ecdsa(&attestation_digest(&public), node_key)
            .serialize_compact();
        StateSigner {
            key,
            public: StateKey(public),
            attestation,
        }
    }

    /// The public half.
    pub fn public(&self) -> StateKey {
        self.public
    }

    /// Signs `entry` in place.
    pub fn sign(&self, entry: &mut SignerStateEntry) {
        entry.signature = self.sign_digest(&entry_digest(entry));
    }

    /// Whether `entry` carries this signer's valid signature.
    pub fn verify(&self, entry: &SignerStateEntry) -> bool {
        self.public.verify_entry(entry)
    }

    /// Proves `answer` (to the request `request_raw`) is this seed's: sets its proof.
    pub fn prove(&self, request_raw: &[u8], answer: &mut HsmResponse) {
        let signature = self.sign_digest(&answer_digest(request_raw, answer));
        answer.skylight_proof = Some(AnswerProof {
            state_key: self.public.0.serialize().to_vec(),
            attestation: self.attestation.to_vec(),
            signature,
        });
    }

    fn sign_digest(&self, digest: &Message) -> Vec<u8> {
        Secp256k1::signing_only()
            .sign_ecdsa(digest, &self.key)
            .serialize_compact()
            .to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_key(n: u8) -> (SecretKey, PublicKey) {
        let key = SecretKey::from_slice(&[n; 32]).unwrap();
        (key, key.public_key(&Secp256k1::signing_only()))
    }

    fn entry() -> SignerStateEntry {
        SignerStateEntry {
            version: 4,
            key: "channels/x".into(),
            value: b"{}".to_vec(),
            signature: vec![],
        }
    }

    #[test]
    fn a_signed_entry_verifies_and_any_change_breaks_it() {
        let (node, _) = node_key(9);
        let s = StateSigner::new(&[1; 32], &node);
        let mut e = entry();
        assert!(!s.verify(&e));
        s.sign(&mut e);
        assert!(s.verify(&e));
        let mut bumped = e.clone();
        bumped.version = 9;
        assert!(!s.verify(&bumped));
        let mut altered = e.clone();
        altered.value = b"{\"x\":1}".to_vec();
        assert!(!s.verify(&altered));
        assert!(
            !StateSigner::new(&[2; 32], &node).verify(&e),
            "another seed's key"
        );
    }

    #[test]
    fn the_attestation_names_the_state_key_for_its_node_only() {
        let (node, node_id) = node_key(9);
        let (_, other_node) = node_key(8);
        let s = StateSigner::new(&[1; 32], &node);
        let mut answer = HsmResponse::default();
        s.prove(b"request", &mut answer);
        let proof = answer.skylight_proof.unwrap();
        assert_eq!(
            StateKey::attested(&node_id, &proof.state_key, &proof.attestation),
            Some(s.public())
        );
        assert_eq!(
            StateKey::attested(&other_node, &proof.state_key, &proof.attestation),
            None
        );
        // A key of someone else's, with this node's attestation, is not attested.
        let stranger = StateSigner::new(&[3; 32], &node).public().0.serialize();
        assert_eq!(
            StateKey::attested(&node_id, &stranger, &proof.attestation),
            None
        );
    }

    #[test]
    fn an_answer_proof_covers_the_request_and_the_answer() {
        let (node, _) = node_key(9);
        let s = StateSigner::new(&[1; 32], &node);
        let mut answer = HsmResponse {
            request_id: 7,
            raw: vec![1, 2, 3],
            ..Default::default()
        };
        s.prove(b"request", &mut answer);
        let key = s.public();
        assert!(key.verify_answer(b"request", &answer));
        assert!(!key.verify_answer(b"another request", &answer));
        let mut moved = answer.clone();
        moved.request_id = 8;
        assert!(!key.verify_answer(b"request", &moved));
        let mut changed = answer.clone();
        changed.raw = vec![1, 2, 4];
        assert!(!key.verify_answer(b"request", &changed));
        let mut refusal = answer.clone();
        refusal.error = "policy: no".into();
        assert!(!key.verify_answer(b"request", &refusal));
        assert!(!key.verify_answer(b"request", &HsmResponse::default()));
    }
}
