//! Greenlight's backup file format: `0x01` ‖ 33-byte ephemeral public key ‖ 12-byte nonce ‖
//! 16-byte tag ‖ ciphertext. The key is SHA-256 of the ECDH point of the ephemeral key and
//! the node key (libsecp256k1's `SharedSecret`), the cipher ChaCha20-Poly1305, and the
//! additional data the 33-byte node id, so a file sealed to one node never opens as
//! another's.

use bitcoin::secp256k1::ecdh::SharedSecret;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use ring::rand::SecureRandom;

use super::ExportError;
use crate::keys::NodeKeys;

/// The format's version byte.
pub const VERSION: u8 = 0x01;
/// Version, ephemeral key, nonce, tag.
pub const HEADER_LEN: usize = 1 + 33 + 12 + 16;

fn random<const N: usize>() -> Result<[u8; N], ExportError> {
    let mut out = [0; N];
    ring::rand::SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| ExportError::Invalid("no randomness from the system".into()))?;
    Ok(out)
}

/// Seals `plain` to the node `node_id`.
pub fn seal(node_id: &PublicKey, plain: &[u8]) -> Result<Vec<u8>, ExportError> {
    let ephemeral = loop {
        // A random 32-byte string is a valid key but for odds of about 2^-128.
        if let Ok(k) = SecretKey::from_slice(&random::<32>()?) {
            break k;
        }
    };
    let key = SharedSecret::new(node_id, &ephemeral).secret_bytes();
    let nonce = random::<12>()?;
    let mut body = plain.to_vec();
    let tag = ChaCha20Poly1305::new(&key.into())
        .encrypt_in_place_detached(&nonce.into(), &node_id.serialize(), &mut body)
        .map_err(|_| ExportError::Invalid("the export is too large to seal".into()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.push(VERSION);
    out.extend_from_slice(&ephemeral.public_key(&Secp256k1::signing_only()).serialize());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&tag);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Opens a file sealed to `keys`' node.
pub fn open(keys: &NodeKeys, sealed: &[u8]) -> Result<Vec<u8>, ExportError> {
    if sealed.len() < HEADER_LEN {
        return Err(ExportError::Invalid(format!(
            "the file is {} bytes, shorter than an export's header: is it the whole download?",
            sealed.len()
        )));
    }
    if sealed[0] != VERSION {
        return Err(ExportError::Invalid(format!(
            "export format version {} is not {VERSION}, which this version reads",
            sealed[0]
        )));
    }
    let ephemeral = PublicKey::from_slice(&sealed[1..34])
        .map_err(|_| ExportError::Invalid("the export's key is damaged".into()))?;
    let nonce: [u8; 12] = sealed[34..46].try_into().expect("12 bytes");
    let tag: [u8; 16] = sealed[46..62].try_into().expect("16 bytes");
    let key = keys.shared_secret(&ephemeral);
    let mut body = sealed[HEADER_LEN..].to_vec();
    ChaCha20Poly1305::new(&key.into())
        .decrypt_in_place_detached(&nonce.into(), &keys.node_id_bytes(), &mut body, &tag.into())
        .map_err(|_| ExportError::WrongKey)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use bitcoin::Network;

    use super::*;
    use crate::secret::HsmSecret;

    fn keys(byte: u8) -> NodeKeys {
        NodeKeys::derive(&HsmSecret::from_bytes([byte; 32]), Network::Regtest)
    }

    #[test]
    fn a_sealed_export_opens_with_the_nodes_seed_only() {
        let (mine, other) = (keys(1), keys(2));
        let sealed = seal(&mine.node_id, b"the node").unwrap();
        assert_eq!(sealed[0], VERSION);
        assert_eq!(sealed.len(), HEADER_LEN + 8);
        assert_eq!(open(&mine, &sealed).unwrap(), b"the node");
        assert!(matches!(open(&other, &sealed), Err(ExportError::WrongKey)));
    }

    #[test]
    fn an_altered_or_truncated_export_is_refused() {
        let mine = keys(1);
        let sealed = seal(&mine.node_id, b"the node").unwrap();
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(open(&mine, &flipped), Err(ExportError::WrongKey)));
        assert!(matches!(
            open(&mine, &sealed[..HEADER_LEN - 1]),
            Err(ExportError::Invalid(_))
        ));
        let mut newer = sealed;
        newer[0] = 2;
        assert!(matches!(open(&mine, &newer), Err(ExportError::Invalid(_))));
    }

    #[test]
    fn the_node_key_does_not_depend_on_the_network() {
        // Greenlight's client derives the key for mainnet whatever the node's network: a
        // file sealed to a regtest node must open with that derivation too.
        let secret = HsmSecret::from_bytes([3; 32]);
        let regtest = NodeKeys::derive(&secret, Network::Regtest);
        let bitcoin = NodeKeys::derive(&secret, Network::Bitcoin);
        assert_eq!(regtest.node_id, bitcoin.node_id);
        let sealed = seal(&regtest.node_id, b"x").unwrap();
        assert_eq!(open(&bitcoin, &sealed).unwrap(), b"x");
    }
}
