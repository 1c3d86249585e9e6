//! Proof of node-key ownership: a Lightning `signmessage`-style signature over a challenge.

use bitcoin::hashes::{Hash, sha256d};
use bitcoin::secp256k1::{Message, PublicKey, Secp256k1, ecdsa::Signature};

use crate::error::Error;

/// The prefix Lightning's `signmessage` puts before the message.
const PREFIX: &[u8] = b"Lightning Signed Message:";

/// The digest a node key signs for `challenge`: sha256d(prefix ‖ challenge).
pub fn challenge_digest(challenge: &[u8]) -> [u8; 32] {
    let mut data = Vec::with_capacity(PREFIX.len() + challenge.len());
    data.extend_from_slice(PREFIX);
    data.extend_from_slice(challenge);
    sha256d::Hash::hash(&data).to_byte_array()
}

/// Parses a 33-byte node id.
pub fn parse_node_id(bytes: &[u8]) -> Result<PublicKey, Error> {
    if bytes.len() != 33 {
        return Err(Error::InvalidArgument(format!(
            "node_id must be a 33-byte compressed public key, got {} bytes",
            bytes.len()
        )));
    }
    PublicKey::from_slice(bytes)
        .map_err(|_| Error::InvalidArgument("node_id is not a valid secp256k1 public key".into()))
}

/// Checks that `signature` (64-byte compact r‖s) is the node key's signature of `challenge`.
pub fn verify(node_id: &PublicKey, challenge: &[u8], signature: &[u8]) -> Result<(), Error> {
    let mut sig = Signature::from_compact(signature).map_err(|_| {
        Error::InvalidArgument(format!(
            "the signature must be 64 bytes (compact r‖s), got {} bytes",
            signature.len()
        ))
    })?;
    // A high-S signature is as much a proof of the key; accept it in its normal form.
    sig.normalize_s();
    let msg = Message::from_digest(challenge_digest(challenge));
    Secp256k1::verification_only()
        .verify_ecdsa(&msg, &sig, node_id)
        .map_err(|_| {
            Error::Unauthenticated(
                "the signature does not verify: the challenge must be signed with this node's key"
                    .into(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Greenlight's published vector: seed 32×0x00 gives this node id, and its signature of
    // the challenge 32×0x00.
    const NODE_ID: &str = "02058e8b6c2ad363ec59aa136429256d745164c2bdc87f98f0a68690ec2c5c9b0b";
    const SIG: &str = "cdd553f30964056a855556b2d4635c6f8872fdc145de0dd336020886a56377a150f70a2a8bc428fabe9be87ede610999af8a14a64f7e9ef73836d78e59d28d92";

    #[test]
    fn greenlight_test_vector_verifies() {
        let node = parse_node_id(&hex::decode(NODE_ID).unwrap()).unwrap();
        verify(&node, &[0u8; 32], &hex::decode(SIG).unwrap()).unwrap();
    }

    #[test]
    fn a_wrong_challenge_or_key_is_refused() {
        let node = parse_node_id(&hex::decode(NODE_ID).unwrap()).unwrap();
        let sig = hex::decode(SIG).unwrap();
        assert!(matches!(
            verify(&node, &[1u8; 32], &sig),
            Err(Error::Unauthenticated(_))
        ));
        assert!(matches!(
            verify(&node, &[0u8; 32], &sig[..63]),
            Err(Error::InvalidArgument(_))
        ));
        assert!(parse_node_id(&[2u8; 32]).is_err());
    }
}
