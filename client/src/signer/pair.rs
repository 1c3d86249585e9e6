//! The signer's part in pairing: it approves a new device only from what it verifies
//! itself, and mints the new device's rune, never wider than the approving device's own.
//!
//! Checked, for an `ApprovePairing` the scheduler forwards: the approval is signed by the
//! key it names ([`crate::pairing`]); that key is not revoked; its rune was minted by this
//! seed, is bound to that key and allows `approvepairing`; and its timestamp is within
//! [`approvals::WINDOW`] of the signer's clock (Greenlight's signer checks none of this
//! but the signature and rune). The new rune carries the approving rune's restrictions (but
//! its key), the new device's key, and the restrictions the approval asks for: each only
//! narrows.

use runeauth::{Alternative, Restriction, Rune};
use skylight_proto::scheduler::{ApprovePairingRequest, ApprovePairingResponse};

use super::{Signer, approvals};
use crate::runes::RuneContext;

impl Signer {
    /// Approves the pairing `req` asks for at `now_ms`: the new device's rune, or why not.
    pub fn approve_pairing(
        &self,
        req: &ApprovePairingRequest,
        now_ms: u64,
    ) -> Result<ApprovePairingResponse, String> {
        if !crate::pairing::approval_verifies(req, &self.node_id) {
            return Err("the approval's signature does not verify under the key it names".into());
        }
        if self.revoked.contains(&req.pubkey) {
            return Err("the approving device was revoked".into());
        }
        let skew = (req.timestamp.saturating_mul(1000)).abs_diff(now_ms);
        if skew > approvals::WINDOW.as_millis() as u64 {
            return Err(format!(
                "the approval was signed {} s away from the signer's clock (at most {} s)",
                skew / 1000,
                approvals::WINDOW.as_secs()
            ));
        }
        let ctx = RuneContext {
            uri: crate::pairing::APPROVE_PATH.into(),
            pubkey: req.pubkey.clone(),
            time: req.timestamp,
        };
        self.runes
            .check(&req.rune, &ctx)
            .map_err(|why| format!("the approving device's rune does not allow pairing: {why}"))?;
        let new_key = hex::decode(&req.device_id)
            .ok()
            .filter(|k| k.len() == 65 && k[0] == 4)
            .ok_or("the new device's id is not a P-256 public key (65 bytes, hex)")?;
        if self.revoked.contains(&new_key) {
            return Err("the new device's key was revoked".into());
        }
        let mut restrictions = inherited(&req.rune)?;
        restrictions.extend(
            req.restrictions
                .split('&')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_string),
        );
        let texts: Vec<&str> = restrictions.iter().map(String::as_str).collect();
        let rune = self
            .runes
            .mint(&new_key, &texts)
            .map_err(|e| format!("cannot mint the new device's rune: {e:#}"))?;
        Ok(ApprovePairingResponse {
            device_id: req.device_id.clone(),
            node_id: self.node_id.to_vec(),
            rune,
        })
    }
}

/// The restrictions of `rune` a device it approves inherits: all but its unique id and its
/// key binding (the new device gets its own).
fn inherited(rune: &str) -> Result<Vec<String>, String> {
    let bad = |e: runeauth::RuneError| format!("the approving device's rune does not parse: {e}");
    let text = Rune::from_base64(rune).map_err(bad)?.to_string();
    let mut rest = text.split_once(':').map(|(_, r)| r).unwrap_or_default();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (restriction, after) = Restriction::decode(rest, true).map_err(bad)?;
        rest = after;
        let encoded = restriction.encode();
        let mut fields = Vec::new();
        let mut alts = encoded.as_str();
        while !alts.is_empty() {
            let (alt, r) = Alternative::decode(alts, true).map_err(bad)?;
            fields.push(alt.get_field());
            alts = r;
        }
        // Dropped only when every alternative is the id or a key: an alternative of
        // anything else could otherwise widen the rune.
        if fields.iter().all(|f| f.is_empty() || f == "pubkey") {
            continue;
        }
        out.push(encoded);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use bitcoin::Network;

    use super::*;
    use crate::runes::{READ_ONLY, RuneMaster};
    use crate::secret::HsmSecret;
    use crate::signed_request::{RequestSigner, now_ms};

    fn device() -> (RequestSigner, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let raw = key.public_key_raw().to_vec();
        (
            RequestSigner::new(key.serialize_pem().as_bytes()).unwrap(),
            raw,
        )
    }

    fn approval(
        signer: &Signer,
        approver: &RequestSigner,
        rune: &str,
        new_key: &[u8],
        restrictions: &str,
        at_secs: u64,
    ) -> ApprovePairingRequest {
        crate::pairing::sign_approval(
            approver,
            rune,
            &signer.node_id,
            at_secs,
            ApprovePairingRequest {
                device_id: hex::encode(new_key),
                device_name: "phone".into(),
                restrictions: restrictions.into(),
                ..Default::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn an_approval_mints_a_rune_no_wider_than_the_approvers_and_bound_to_the_new_key() {
        let secret = HsmSecret::from_bytes([0x41; 32]);
        let signer = Signer::new(&secret, Network::Regtest);
        let master = RuneMaster::new(&secret);
        let (approver, approver_key) = device();
        let (_, new_key) = device();
        let now = now_ms() / 1000;
        let full = master.mint(&approver_key, &[]).unwrap();
        let ctx = |uri: &str, key: &[u8]| RuneContext {
            uri: uri.into(),
            pubkey: key.to_vec(),
            time: now,
        };

        // Read-only, as asked: the new device reads, pays nothing, and only with its key.
        let req = approval(&signer, &approver, &full, &new_key, READ_ONLY, now);
        let rune = signer.approve_pairing(&req, now_ms()).unwrap().rune;
        master
            .check(&rune, &ctx("/cln.Node/Getinfo", &new_key))
            .unwrap();
        assert!(
            master
                .check(&rune, &ctx("/cln.Node/Pay", &new_key))
                .is_err()
        );
        assert!(
            master
                .check(&rune, &ctx("/cln.Node/Getinfo", &approver_key))
                .is_err()
        );

        // A pay-only approver that may pair (`method=pay|method=approvepairing`) passes its
        // limits on, whatever the approval asks.
        let limited = master
            .mint(&approver_key, &["method=pay|method=approvepairing"])
            .unwrap();
        let req = approval(&signer, &approver, &limited, &new_key, "", now);
        let rune = signer.approve_pairing(&req, now_ms()).unwrap().rune;
        master
            .check(&rune, &ctx("/cln.Node/Pay", &new_key))
            .unwrap();
        assert!(
            master
                .check(&rune, &ctx("/cln.Node/Withdraw", &new_key))
                .is_err()
        );
    }

    #[test]
    fn an_approval_is_refused_unless_signed_fresh_by_an_unrevoked_device_whose_rune_allows_pairing()
    {
        let secret = HsmSecret::from_bytes([0x42; 32]);
        let signer = Signer::new(&secret, Network::Regtest);
        let master = RuneMaster::new(&secret);
        let (approver, approver_key) = device();
        let (_, new_key) = device();
        let now = now_ms() / 1000;
        let full = master.mint(&approver_key, &[]).unwrap();
        let refused = |req: &ApprovePairingRequest, why: &str| {
            let e = signer.approve_pairing(req, now_ms()).unwrap_err();
            assert!(e.contains(why), "{e}");
        };

        let mut altered = approval(&signer, &approver, &full, &new_key, "", now);
        altered.restrictions = "method^get".into();
        refused(&altered, "does not verify");
        refused(
            &approval(&signer, &approver, &full, &new_key, "", now - 3600),
            "clock",
        );
        let read_only = master.mint(&approver_key, &[READ_ONLY]).unwrap();
        refused(
            &approval(&signer, &approver, &read_only, &new_key, "", now),
            "does not allow pairing",
        );
        let foreign = RuneMaster::new(&HsmSecret::from_bytes([9; 32]))
            .mint(&approver_key, &[])
            .unwrap();
        refused(
            &approval(&signer, &approver, &foreign, &new_key, "", now),
            "does not allow pairing",
        );
        signer
            .revoked()
            .add(&[(approver_key.clone(), "old".into())])
            .unwrap();
        refused(
            &approval(&signer, &approver, &full, &new_key, "", now),
            "revoked",
        );
    }
}
