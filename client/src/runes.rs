//! Runes in Greenlight's scheme: what a device may ask the node to do, minted by the signer
//! from the seed, so that only the seed's holder can make or check one.
//!
//! The scheme is Greenlight's own (the `runeauth` crate Greenlight's client uses): the
//! master secret is HKDF-SHA256 of the 32-byte seed with the info `gl-commando` and no salt;
//! the master rune carries unique id `0` and version `gl0`, so every rune starts with the
//! restriction `=0-gl0`. A device's rune adds `pubkey=<its TLS public key, hex>`; further
//! restrictions narrow it (`method^get|method^list` reads only, `method=pay` pays only).
//! A rune is the 32-byte authcode and the restrictions' text, base64 URL-safe with padding.
//! Greenlight's client mints the same rune for the same seed and key, so credentials move
//! between the two in either direction.
//!
//! When a rune is checked, its fields are: `""` (its unique id and version, `0-gl0`),
//! `method` (the last segment of the call's gRPC path, lower-cased), `pubkey` (hex of the
//! key that signed the request) and `time` (unix seconds). A field the check is not given
//! reads as empty.

use std::collections::HashMap;

use anyhow::{Context, Result, anyhow};
use lightning_signer::util::crypto_utils::hkdf_sha256;
use runeauth::{MapChecker, Restriction, Rune};

use crate::secret::HsmSecret;

/// The rune version Greenlight's signer uses.
pub const VERSION: &str = "gl0";
/// The unique id of the master rune.
const UNIQUE_ID: &str = "0";
/// The HKDF info that derives the master rune's secret from the seed.
const DERIVATION: &[u8] = b"gl-commando";

/// Restrictions of a device that may only read: calls whose method starts with `get` or
/// `list`. Lower case, as the method is checked lower-cased: gl-client's own read-only set
/// (`method^Get|method^List`) matches no call at all, in Greenlight's signer as here.
pub const READ_ONLY: &str = "method^get|method^list";
/// Restrictions of a device that may only pay.
pub const PAY_ONLY: &str = "method=pay";

/// The seed's master rune: it mints runes and tells whether one is its own.
pub struct RuneMaster(Rune);

/// What a request presents to a rune check.
#[derive(Debug, Clone, Default)]
pub struct RuneContext {
    /// The gRPC path called, `/cln.Node/Pay` say.
    pub uri: String,
    /// The public key that signed the request (65-byte uncompressed P-256).
    pub pubkey: Vec<u8>,
    /// When the request was made, unix seconds.
    pub time: u64,
}

impl RuneMaster {
    /// The master rune of `secret`'s seed.
    pub fn new(secret: &HsmSecret) -> Self {
        let key = hkdf_sha256(secret.bytes(), DERIVATION, &[]);
        let master = Rune::new_master_rune(
            &key,
            Vec::new(),
            Some(UNIQUE_ID.to_string()),
            Some(VERSION.to_string()),
        )
        .expect("a 32-byte key and fixed id make a master rune");
        RuneMaster(master)
    }

    /// Mints the rune of the device whose TLS public key is `pubkey` (65-byte uncompressed
    /// P-256), narrowed by `restrictions` (each a restriction's text: alternatives joined
    /// by `|`).
    pub fn mint(&self, pubkey: &[u8], restrictions: &[&str]) -> Result<String> {
        let mut rune = self.0.clone();
        let bound = format!("pubkey={}", hex::encode(pubkey));
        for text in std::iter::once(bound.as_str()).chain(restrictions.iter().copied()) {
            let restriction = Restriction::try_from(text)
                .map_err(|e| anyhow!("{text:?} is not a rune restriction: {e}"))?;
            rune.add_restriction(restriction)
                .map_err(|e| anyhow!("cannot add {text:?} to the rune: {e}"))?;
        }
        Ok(rune.to_base64())
    }

    /// Mints the rune of the device whose credentials hold `key_pem` (its TLS private key),
    /// with no restriction beyond that key: what register and recover store.
    pub fn device_rune(&self, key_pem: &[u8]) -> Result<String> {
        let pem = std::str::from_utf8(key_pem).context("the device key is not PEM text")?;
        let key = rcgen::KeyPair::from_pem(pem).context("the device key does not parse")?;
        self.mint(key.public_key_raw(), &[])
    }

    /// Whether `rune` (base64) is one this seed minted and allows the request `ctx`
    /// describes: `Err` names why not.
    pub fn check(&self, rune: &str, ctx: &RuneContext) -> Result<(), String> {
        let (_, checker) = parse(rune, ctx)?;
        self.0
            .check_with_reason(rune, checker)
            .map_err(|e| e.to_string())
    }
}

/// Whether `rune`'s restrictions allow the request `ctx` describes, *without* telling
/// whether the rune is authentic (only the seed can): what node-host checks to refuse a
/// call early and clearly. The signer's [`RuneMaster::check`] is what counts.
pub fn restrictions_allow(rune: &str, ctx: &RuneContext) -> Result<(), String> {
    let (parsed, checker) = parse(rune, ctx)?;
    parsed
        .are_restrictions_met(checker)
        .map_err(|e| e.to_string())
}

/// The rune and what its fields read for `ctx`.
fn parse(rune: &str, ctx: &RuneContext) -> Result<(Rune, MapChecker), String> {
    let parsed = Rune::from_base64(rune).map_err(|e| format!("not a rune: {e}"))?;
    // A rune not bound to a key would serve any device: refused, as Greenlight does.
    if !parsed.to_string().contains("pubkey=") {
        return Err("the rune names no device key".into());
    }
    let mut parts = ctx.uri.split('/').skip(1);
    let service = parts.next().unwrap_or_default();
    if service != "cln.Node" && service != "greenlight.Node" {
        return Err(format!("runes do not cover the service {service:?}"));
    }
    let method = parts
        .next()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| format!("no method in {:?}", ctx.uri))?
        .to_lowercase();
    let mut map = HashMap::from([
        ("method".to_string(), method),
        ("pubkey".to_string(), hex::encode(&ctx.pubkey)),
        ("time".to_string(), ctx.time.to_string()),
    ]);
    if let Some(id) = parsed.clone().get_id() {
        map.insert(String::new(), format!("{id}-{VERSION}"));
    }
    Ok((parsed, MapChecker { map }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> RuneMaster {
        RuneMaster::new(&HsmSecret::from_bytes([7; 32]))
    }

    fn pubkey() -> Vec<u8> {
        let mut k = vec![4];
        k.extend([0x11; 64]);
        k
    }

    fn ctx(uri: &str) -> RuneContext {
        RuneContext {
            uri: uri.into(),
            pubkey: pubkey(),
            time: 1_700_000_000,
        }
    }

    #[test]
    fn the_rune_greenlights_client_mints_for_the_same_seed_and_key_is_ours_byte_for_byte() {
        // gl-client v25.05 (`Signer(bytes([7] * 32), "regtest", Credentials())
        // .create_rune([["pubkey=04" + "11" * 64]])`), and with `["method^get",
        // "method^list"]` added.
        let ours = master().mint(&pubkey(), &[]).unwrap();
        assert_eq!(
            ours,
            "Ff8Ar3YB7l0S_lZ6MqqTzSfrVctN7N5ROcqR6kpB1Sg9MC1nbDAmcHVia2V5PTA0MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE="
        );
        let read_only = master().mint(&pubkey(), &[READ_ONLY]).unwrap();
        assert_eq!(
            read_only,
            "T4kp0aSD0XwB0ZXXZUMTHnztkBjQ0-_jsadqYXDJooQ9MC1nbDAmcHVia2V5PTA0MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTEmbWV0aG9kXmdldHxtZXRob2RebGlzdA=="
        );
    }

    #[test]
    fn a_device_rune_allows_its_key_any_node_call_and_no_other_key() {
        let m = master();
        let rune = m.mint(&pubkey(), &[]).unwrap();
        m.check(&rune, &ctx("/cln.Node/Pay")).unwrap();
        m.check(&rune, &ctx("/greenlight.Node/StreamHsmRequests"))
            .unwrap();
        let other = RuneContext {
            pubkey: vec![4; 65],
            ..ctx("/cln.Node/Pay")
        };
        assert!(m.check(&rune, &other).is_err());
        assert!(
            m.check(&rune, &ctx("/scheduler.Scheduler/Schedule"))
                .is_err()
        );
    }

    #[test]
    fn a_read_only_rune_reads_and_cannot_pay_and_a_pay_only_rune_only_pays() {
        let m = master();
        let read_only = m.mint(&pubkey(), &[READ_ONLY]).unwrap();
        m.check(&read_only, &ctx("/cln.Node/Getinfo")).unwrap();
        m.check(&read_only, &ctx("/cln.Node/ListFunds")).unwrap();
        let refused = m.check(&read_only, &ctx("/cln.Node/Pay")).unwrap_err();
        assert!(refused.contains("method"), "{refused}");
        let pay_only = m.mint(&pubkey(), &[PAY_ONLY]).unwrap();
        m.check(&pay_only, &ctx("/cln.Node/Pay")).unwrap();
        assert!(m.check(&pay_only, &ctx("/cln.Node/Withdraw")).is_err());
    }

    #[test]
    fn a_rune_of_another_seed_or_altered_is_not_ours() {
        let theirs = RuneMaster::new(&HsmSecret::from_bytes([8; 32]))
            .mint(&pubkey(), &[])
            .unwrap();
        let refused = master().check(&theirs, &ctx("/cln.Node/Pay")).unwrap_err();
        assert!(refused.to_lowercase().contains("unauthorized"), "{refused}");
        // A read-only rune with its restriction cut off is no longer authentic.
        let read_only = master().mint(&pubkey(), &[READ_ONLY]).unwrap();
        let mut raw = base64_decode(&read_only);
        raw.truncate(raw.len() - "&method^get|method^list".len());
        let widened = base64_encode(&raw);
        assert!(master().check(&widened, &ctx("/cln.Node/Pay")).is_err());
    }

    #[test]
    fn restrictions_are_read_without_the_seed_but_only_the_seed_tells_a_rune_is_authentic() {
        let read_only = RuneMaster::new(&HsmSecret::from_bytes([8; 32]))
            .mint(&pubkey(), &[READ_ONLY])
            .unwrap();
        restrictions_allow(&read_only, &ctx("/cln.Node/Getinfo")).unwrap();
        assert!(restrictions_allow(&read_only, &ctx("/cln.Node/Pay")).is_err());
        // Another seed's rune reads fine as restrictions, and is still not ours.
        assert!(
            master()
                .check(&read_only, &ctx("/cln.Node/Getinfo"))
                .is_err()
        );
    }

    #[test]
    fn a_device_rune_is_bound_to_the_public_key_of_its_credentials() {
        let key = rcgen::KeyPair::generate().unwrap();
        let rune = master()
            .device_rune(key.serialize_pem().as_bytes())
            .unwrap();
        let c = RuneContext {
            pubkey: key.public_key_raw().to_vec(),
            ..ctx("/cln.Node/Getinfo")
        };
        master().check(&rune, &c).unwrap();
    }

    fn base64_decode(s: &str) -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE.decode(s).unwrap()
    }

    fn base64_encode(b: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE.encode(b)
    }
}
