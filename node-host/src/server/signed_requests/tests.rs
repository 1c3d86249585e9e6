use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

use super::*;

struct Device {
    key: EcdsaKeyPair,
    /// Its rune, as its seed minted it (with `restrictions`).
    rune: String,
}

fn master() -> skylight_client::runes::RuneMaster {
    skylight_client::runes::RuneMaster::new(&skylight_client::secret::HsmSecret::from_bytes(
        [1; 32],
    ))
}

impl Device {
    fn new() -> Self {
        Self::restricted(&[])
    }

    fn restricted(restrictions: &[&str]) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .unwrap();
        let rune = master()
            .mint(key.public_key().as_ref(), restrictions)
            .unwrap();
        Device { key, rune }
    }

    fn public(&self) -> Vec<u8> {
        self.key.public_key().as_ref().to_vec()
    }

    fn sign(&self, body: &[u8], ts: u64) -> Headers {
        let mut msg = body.to_vec();
        msg.extend_from_slice(&ts.to_be_bytes());
        let sig = self.key.sign(&SystemRandom::new(), &msg).unwrap();
        Headers {
            pubkey: Some(B64.encode(self.public())),
            signature: Some(B64.encode(sig.as_ref())),
            timestamp: Some(B64.encode(ts.to_be_bytes())),
            rune: Some(self.rune.clone()),
        }
    }
}

const PATH: &str = "/cln.Node/Invoice";

#[test]
fn a_fresh_signed_request_passes_once_and_is_kept_for_signers() {
    let v = Verifier::new(Duration::from_secs(60));
    let d = Device::new();
    let h = d.sign(b"\0\0\0\0\x02ab", now_ms());
    v.check(PATH, &h, b"\0\0\0\0\x02ab", Some(&d.public()))
        .unwrap();
    let recent = v.recent();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].uri, PATH);
    // Kept as Greenlight's node keeps it: the rune's bytes.
    assert_eq!(recent[0].rune, B64_URL.decode(&d.rune).unwrap());
    let again = v
        .check(PATH, &h, b"\0\0\0\0\x02ab", Some(&d.public()))
        .unwrap_err();
    assert!(again.message().contains("replay"), "{again:?}");
}

#[test]
fn a_finished_call_no_longer_travels_to_signers() {
    let v = Verifier::new(Duration::from_secs(60));
    let d = Device::new();
    let first = d.sign(b"\0\0\0\0\x02ab", now_ms());
    let second = d.sign(b"\0\0\0\0\x02cd", now_ms());
    v.check(PATH, &first, b"\0\0\0\0\x02ab", Some(&d.public()))
        .unwrap();
    v.check(PATH, &second, b"\0\0\0\0\x02cd", Some(&d.public()))
        .unwrap();
    v.finished(&first);
    let recent = v.recent();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].request, b"\0\0\0\0\x02cd");
    v.finished(&second);
    assert!(v.recent().is_empty());
}

#[test]
fn bad_signatures_other_keys_and_stale_timestamps_are_refused() {
    let v = Verifier::new(Duration::from_secs(60));
    let d = Device::new();
    let body = b"\0\0\0\0\x01z";
    // Signed over another body.
    let h = d.sign(b"\0\0\0\0\x01y", now_ms());
    assert_eq!(
        v.check(PATH, &h, body, Some(&d.public()))
            .unwrap_err()
            .code(),
        tonic::Code::Unauthenticated
    );
    // Signed by a key that is not the caller's TLS key.
    let other = Device::new();
    let h = other.sign(body, now_ms());
    assert_eq!(
        v.check(PATH, &h, body, Some(&d.public()))
            .unwrap_err()
            .code(),
        tonic::Code::PermissionDenied
    );
    // Ten minutes old.
    let h = d.sign(body, now_ms() - 600_000);
    let e = v.check(PATH, &h, body, Some(&d.public())).unwrap_err();
    assert!(e.message().contains("clock"), "{e:?}");
    // No headers at all.
    assert_eq!(
        v.check(PATH, &Headers::default(), body, Some(&d.public()))
            .unwrap_err()
            .code(),
        tonic::Code::Unauthenticated
    );
    // The signer's own plumbing is not signed.
    v.check(
        "/greenlight.Node/RespondHsmRequest",
        &Headers::default(),
        body,
        None,
    )
    .unwrap();
    assert!(v.recent().is_empty());
}

#[test]
fn a_malleated_signature_is_still_a_replay() {
    let v = Verifier::new(Duration::from_secs(60));
    let d = Device::new();
    let body = b"\0\0\0\0\x01q";
    let h = d.sign(body, now_ms());
    v.check(PATH, &h, body, Some(&d.public())).unwrap();
    // (r, s) → (r, n - s) is another valid signature of the same message.
    let sig = B64.decode(h.signature.as_ref().unwrap()).unwrap();
    let n: [u8; 32] = hex_n();
    let s_neg = sub_be(&n, &sig[32..]);
    let mut malleated = sig[..32].to_vec();
    malleated.extend_from_slice(&s_neg);
    let h2 = Headers {
        signature: Some(B64.encode(&malleated)),
        ..h
    };
    let e = v.check(PATH, &h2, body, Some(&d.public())).unwrap_err();
    assert!(
        e.message().contains("replay") || e.message().contains("does not verify"),
        "{e:?}"
    );
}

/// The P-256 group order.
fn hex_n() -> [u8; 32] {
    let h = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
    let mut out = [0u8; 32];
    for i in 0..32 {
        out[i] = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// a - b for 32-byte big-endian numbers (a > b).
fn sub_be(a: &[u8; 32], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = a[i] as i16 - b[i] as i16 - borrow;
        borrow = if d < 0 { 1 } else { 0 };
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    out
}

#[test]
fn an_identical_read_in_the_same_millisecond_is_served_and_a_call_with_effects_is_not() {
    let v = Verifier::new(Duration::from_secs(60));
    let d = Device::new();
    let body = b"\0\0\0\0\0";
    let h = d.sign(body, now_ms());
    for _ in 0..2 {
        v.check("/cln.Node/Getinfo", &h, body, Some(&d.public()))
            .unwrap();
        v.check("/cln.Node/ListFunds", &h, body, Some(&d.public()))
            .unwrap();
    }
    v.check(PATH, &h, body, Some(&d.public())).unwrap();
    let again = v.check(PATH, &h, body, Some(&d.public())).unwrap_err();
    assert!(again.message().contains("replay"), "{again:?}");
    assert!(!is_read("/cln.Node/Pay") && !is_read("/cln.Node/Withdraw"));
}

#[test]
fn a_call_the_devices_rune_does_not_allow_is_refused_with_the_restriction_named() {
    let v = Verifier::new(Duration::from_secs(60));
    let d = Device::restricted(&[skylight_client::runes::READ_ONLY]);
    let body = b"\0\0\0\0\0";
    let h = d.sign(body, now_ms());
    v.check("/cln.Node/Getinfo", &h, body, Some(&d.public()))
        .unwrap();
    let refused = v
        .check("/cln.Node/Pay", &h, body, Some(&d.public()))
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert!(
        refused.message().contains("rune does not allow /cln.Node/Pay")
            && refused.message().contains("method"),
        "{refused:?}"
    );
    // Garbage in glrune: refused, said so.
    let mut garbled = d.sign(body, now_ms());
    garbled.rune = Some("cnVuZQ".into());
    let refused = v
        .check("/cln.Node/Getinfo", &garbled, body, Some(&d.public()))
        .unwrap_err();
    assert!(refused.message().contains("not a rune"), "{refused:?}");
}
