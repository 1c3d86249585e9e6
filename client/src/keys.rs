//! The node key, derived as CLN and Greenlight do (VLS "native" derivation), and the
//! challenge signature that proves it to the scheduler.

use bitcoin::Network;
use bitcoin::hashes::{Hash, sha256d};
use bitcoin::secp256k1::{Message, PublicKey, Secp256k1, SecretKey};
use lightning_signer::signer::derive::{KeyDerivationStyle, key_derive};

use crate::secret::HsmSecret;

/// The node's identity key pair.
pub struct NodeKeys {
    /// The node id.
    pub node_id: PublicKey,
    secret: SecretKey,
}

impl NodeKeys {
    /// Derives the node key from the secret, exactly as VLS does for CLN-compatible nodes.
    pub fn derive(secret: &HsmSecret, network: Network) -> Self {
        let secp = Secp256k1::new();
        let (node_id, secret) =
            key_derive(KeyDerivationStyle::Native, network).node_keys(secret.bytes(), &secp);
        NodeKeys { node_id, secret }
    }

    /// The 33-byte node id.
    pub fn node_id_bytes(&self) -> [u8; 33] {
        self.node_id.serialize()
    }

    /// The ECDH secret of the node key and `other` (SHA-256 of the shared point, as
    /// libsecp256k1 makes it): what opens an export sealed to this node.
    pub fn shared_secret(&self, other: &PublicKey) -> [u8; 32] {
        bitcoin::secp256k1::ecdh::SharedSecret::new(other, &self.secret).secret_bytes()
    }

    /// The seed's state key, attested by this node key (see [`crate::state_key`]).
    pub fn state_signer(&self, secret: &HsmSecret) -> crate::state_key::StateSigner {
        crate::state_key::StateSigner::new(secret.bytes(), &self.secret)
    }

    /// Signs a scheduler challenge as Lightning's `signmessage` does (ECDSA over
    /// sha256d("Lightning Signed Message:" ‖ challenge)); returns the 64-byte compact form
    /// Greenlight's scheduler protocol carries.
    pub fn sign_challenge(&self, challenge: &[u8]) -> [u8; 64] {
        let mut data = b"Lightning Signed Message:".to_vec();
        data.extend_from_slice(challenge);
        let digest = sha256d::Hash::hash(&data).to_byte_array();
        Secp256k1::signing_only()
            .sign_ecdsa(&Message::from_digest(digest), &self.secret)
            .serialize_compact()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greenlight_challenge_vector_reproduces() {
        // Greenlight's published vector: seed 32×0x00, challenge 32×0x00.
        let keys = NodeKeys::derive(&HsmSecret::from_bytes([0; 32]), Network::Regtest);
        assert_eq!(
            hex::encode(keys.node_id_bytes()),
            "02058e8b6c2ad363ec59aa136429256d745164c2bdc87f98f0a68690ec2c5c9b0b"
        );
        assert_eq!(
            hex::encode(keys.sign_challenge(&[0; 32])),
            "cdd553f30964056a855556b2d4635c6f8872fdc145de0dd336020886a56377a150f70a2a8bc428fabe9be87ede610999af8a14a64f7e9ef73836d78e59d28d92"
        );
    }
}
