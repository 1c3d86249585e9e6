//! Node calls signed as Greenlight's clients sign them: the node refuses any call not
//! signed by the key of the device certificate that makes it, and the signer approves a
//! spend only when such a signed call asks for it.
//!
//! The signature is ECDSA P-256/SHA-256 over the gRPC frame of the request (flag byte,
//! u32be length, message) followed by u64be(milliseconds since the epoch), sent in the
//! `glauthpubkey`, `glauthsig` and `glts` headers, base64 without padding, beside the
//! device's rune in `glrune` (see [`crate::runes`]). Devices sign with [`RequestSigner`];
//! node-host and the signer check with [`verifies`].

use anyhow::{Context, Result, anyhow};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;

/// `msg` as gRPC puts it on the wire (a flag byte for "not compressed", the length as
/// u32be, the message): what a device signs and node-host ships to signers.
pub fn grpc_frame(msg: &impl prost::Message) -> Vec<u8> {
    let payload = msg.encode_to_vec();
    let mut frame = Vec::with_capacity(payload.len() + 5);
    frame.push(0);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    frame
}

/// Signs requests with the device key.
pub struct RequestSigner {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// The device's rune, sent as `glrune` (Greenlight's signer ignores a request without
    /// one).
    rune: Option<String>,
}

impl RequestSigner {
    /// The signer for the device whose key (PKCS#8 PEM) is `key_pem`.
    pub fn new(key_pem: &[u8]) -> Result<Self> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(key_pem)
            .map_err(|e| anyhow!("the device key is not a PKCS#8 PEM key: {e}"))?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            der.secret_pkcs8_der(),
            &rng,
        )
        .map_err(|_| anyhow!("the device key is not a P-256 key"))?;
        Ok(RequestSigner {
            key,
            rng,
            rune: None,
        })
    }

    /// Sends `rune` (the device's, from its credentials) with every request; an empty one
    /// is not sent.
    pub fn with_rune(mut self, rune: &str) -> Self {
        self.rune = (!rune.is_empty()).then(|| rune.to_string());
        self
    }

    /// The device's public key (65-byte uncompressed P-256).
    pub fn public_key(&self) -> Vec<u8> {
        self.key.public_key().as_ref().to_vec()
    }

    /// The device key's signature (64 bytes, r ‖ s) over `message`.
    pub fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>> {
        Ok(self
            .key
            .sign(&self.rng, message)
            .map_err(|_| anyhow!("cannot sign with the device key"))?
            .as_ref()
            .to_vec())
    }

    /// `msg` as a request carrying the signature headers, stamped `ts_ms`.
    pub fn sign_at<T: prost::Message>(&self, msg: T, ts_ms: u64) -> Result<tonic::Request<T>> {
        let signed = signed_message(&grpc_frame(&msg), ts_ms);
        let sig = self
            .key
            .sign(&self.rng, &signed)
            .map_err(|_| anyhow!("cannot sign the request"))?;
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        let mut req = tonic::Request::new(msg);
        let md = req.metadata_mut();
        md.insert(
            "glauthpubkey",
            b64.encode(self.key.public_key().as_ref()).parse()?,
        );
        md.insert("glauthsig", b64.encode(sig.as_ref()).parse()?);
        md.insert("glts", b64.encode(ts_ms.to_be_bytes()).parse()?);
        if let Some(rune) = &self.rune {
            md.insert("glrune", rune.parse()?);
        }
        Ok(req)
    }

    /// `msg` as a signed request stamped now.
    pub fn sign<T: prost::Message>(&self, msg: T) -> Result<tonic::Request<T>> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("the clock is before 1970")?
            .as_millis() as u64;
        self.sign_at(msg, now)
    }
}

/// What a device signs for a call: its gRPC `frame` ‖ u64be(`timestamp_ms`).
pub fn signed_message(frame: &[u8], timestamp_ms: u64) -> Vec<u8> {
    let mut signed = Vec::with_capacity(frame.len() + 8);
    signed.extend_from_slice(frame);
    signed.extend_from_slice(&timestamp_ms.to_be_bytes());
    signed
}

/// A signed call's identity: what its device signed (key, frame, timestamp), not the
/// signature bytes, which can be altered into another valid signature for the same
/// message. node-host catches replays by it; the signer marks approvals spent by it.
pub fn request_id(pubkey: &[u8], frame: &[u8], timestamp_ms: u64) -> [u8; 32] {
    let mut input = pubkey.to_vec();
    input.extend_from_slice(&signed_message(frame, timestamp_ms));
    ring::digest::digest(&ring::digest::SHA256, &input)
        .as_ref()
        .try_into()
        .expect("32 bytes")
}

/// The clock as signed requests carry it: milliseconds since the epoch (0 before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Whether `signature` (64 bytes, r ‖ s) by `pubkey` (a 65-byte uncompressed P-256 point)
/// signs `message` itself.
pub fn verifies_bytes(pubkey: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pubkey)
        .verify(message, signature)
        .is_ok()
}

/// Whether `signature` (64 bytes, r ‖ s) by `pubkey` (a 65-byte uncompressed P-256 point)
/// signs `frame` stamped `timestamp_ms`, as [`RequestSigner`] signs.
pub fn verifies(pubkey: &[u8], frame: &[u8], timestamp_ms: u64, signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pubkey)
        .verify(&signed_message(frame, timestamp_ms), signature)
        .is_ok()
}
