//! Fault injection for end-to-end tests: node-host misbehaving toward its signer as a
//! compromised host could, so that tests through the real binaries can show the signer,
//! not node-host, guarding the money.
//!
//! Off unless `SKYLIGHT_NODE_HOST_FAULTS` names a file when node-host starts: then what
//! ships with signing requests goes through [`Faulty`] instead of straight from the
//! verifier. Each line of that file is one fault, read again each time signed requests are
//! shipped (a test changes it while node-host runs):
//!
//! - `drop-signed <path>`: ship no signed client request for calls to `<path>`;
//! - `alter-signed <path>`: ship them with the body changed after signing (an unknown field
//!   appended, so the request still reads the same but its signature no longer verifies);
//! - `forge-signed <path>`: ship them signed again by a key node-host made itself (the
//!   signature verifies under that key; the rune is still the device's);
//! - `replay-signed <path>`: ship, in place of the signed requests to `<path>` in progress,
//!   the first one node-host saw (a host that kept an old request to use it again);
//! - `omit-state <key prefix>`: leave the signer state entries under `<key prefix>` out of
//!   what signing requests carry (a rollback by omission);
//! - `double-withdraw`: build a withdrawal with its output twice (one signed request, two
//!   outputs paying it);
//! - `ignore-revocations`: serve the calls of revoked devices (their requests then ship
//!   to the signer, which must refuse them itself);
//! - `hold-claims [<node id>]`: leave incoming payments unclaimed (a payee that does not
//!   settle: the payer's HTLC stays in flight); all node-hosts, or the one named. Payments
//!   held are claimed once the fault no longer names the node-host.
//!
//! A fault gives node-host no power it lacks: it only withholds or spoils what node-host
//! already hands the signer.

use std::path::PathBuf;
use std::sync::Arc;

use skylight_proto::greenlight::{PendingRequest, SignerStateEntry};

use super::service::ShippedRequests;

/// The variable naming the faults file.
pub const FAULTS_ENV: &str = "SKYLIGHT_NODE_HOST_FAULTS";

/// What ships with signing requests: `honest`'s requests, or, when [`FAULTS_ENV`] is set,
/// those requests spoilt as the faults file says.
pub fn chosen(honest: Arc<dyn ShippedRequests>) -> Arc<dyn ShippedRequests> {
    match std::env::var_os(FAULTS_ENV) {
        Some(file) => {
            let file = PathBuf::from(file);
            tracing::warn!(file = %file.display(), "fault injection is on (tests only)");
            Arc::new(Faulty {
                inner: honest,
                file,
                first_seen: Default::default(),
            })
        }
        None => honest,
    }
}

/// Signed requests as a faulty node-host would ship them.
pub struct Faulty {
    inner: Arc<dyn ShippedRequests>,
    file: PathBuf,
    /// The first signed request seen for each path: what `replay-signed` ships.
    first_seen: std::sync::Mutex<std::collections::HashMap<String, PendingRequest>>,
}

impl ShippedRequests for Faulty {
    fn shipped(&self) -> Vec<PendingRequest> {
        let mut requests = self.inner.shipped();
        let faults = read(&self.file);
        {
            let mut seen = self.first_seen.lock().unwrap_or_else(|p| p.into_inner());
            for r in &requests {
                seen.entry(r.uri.clone()).or_insert_with(|| r.clone());
            }
            for (what, path) in &faults {
                if what == "replay-signed"
                    && let Some(first) = seen.get(path)
                    && requests.iter().any(|r| &r.uri == path)
                {
                    requests.retain(|r| &r.uri != path);
                    requests.push(first.clone());
                }
            }
        }
        apply(requests, &faults)
    }
}

/// What the faults file asks for now.
fn read(file: &std::path::Path) -> Vec<(String, String)> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.is_empty() {
                return None;
            }
            let (what, arg) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            Some((what.to_string(), arg.trim().to_string()))
        })
        .collect()
}

/// Whether fault injection is on at all.
pub fn enabled() -> bool {
    std::env::var_os(FAULTS_ENV).is_some()
}

/// Whether the faults file names `fault` now for node `node` (hex): with no argument, or
/// with `node` as its argument. Never without [`FAULTS_ENV`].
pub fn is_on_for(fault: &str, node: &str) -> bool {
    std::env::var_os(FAULTS_ENV).is_some_and(|file| {
        read(std::path::Path::new(&file))
            .iter()
            .any(|(w, arg)| w == fault && (arg.is_empty() || arg == node))
    })
}

/// The state a signing request carries, as the faults file spoils it now (as it is
/// without [`FAULTS_ENV`]).
pub fn spoil_state(mut entries: Vec<SignerStateEntry>) -> Vec<SignerStateEntry> {
    let Some(file) = std::env::var_os(FAULTS_ENV) else {
        return entries;
    };
    for (what, prefix) in read(std::path::Path::new(&file)) {
        if what == "omit-state" && !prefix.is_empty() {
            entries.retain(|e| !e.key.starts_with(&prefix));
        }
    }
    entries
}

fn apply(mut requests: Vec<PendingRequest>, faults: &[(String, String)]) -> Vec<PendingRequest> {
    for (what, path) in faults {
        match what.as_str() {
            "drop-signed" => requests.retain(|r| &r.uri != path),
            "alter-signed" => {
                for r in requests.iter_mut().filter(|r| &r.uri == path) {
                    // Field 1000, varint 1: unknown to the message, so it decodes the same.
                    r.request.extend_from_slice(&[0xc0, 0x3e, 0x01]);
                }
            }
            "forge-signed" => {
                for r in requests.iter_mut().filter(|r| &r.uri == path) {
                    forge(r);
                }
            }
            // Not about the signed requests that ship (see `is_on_for`, `spoil_state`).
            "hold-claims" | "omit-state" | "replay-signed" | "ignore-revocations"
            | "double-withdraw" => {}
            other => tracing::warn!(fault = other, "unknown fault ignored"),
        }
    }
    requests
}

/// Re-signs `r` with a key node-host made itself: the signature verifies under the key it
/// now names, and the rune is still the device's.
fn forge(r: &mut PendingRequest) {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let rng = ring::rand::SystemRandom::new();
    let Ok(pkcs8) = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng) else {
        return;
    };
    let Ok(key) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
    else {
        return;
    };
    let signed = skylight_client::signed_request::signed_message(&r.request, r.timestamp);
    if let Ok(sig) = key.sign(&rng, &signed) {
        r.signature = sig.as_ref().to_vec();
        r.pubkey = key.public_key().as_ref().to_vec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use skylight_client::signed_request::grpc_frame;
    use skylight_proto::cln::PayRequest;

    fn shipped(uri: &str, bolt11: &str) -> PendingRequest {
        PendingRequest {
            request: grpc_frame(&PayRequest {
                bolt11: bolt11.into(),
                ..Default::default()
            }),
            uri: uri.into(),
            ..Default::default()
        }
    }

    fn fault(what: &str, path: &str) -> Vec<(String, String)> {
        vec![(what.into(), path.into())]
    }

    #[test]
    fn a_forged_request_verifies_under_a_key_of_node_hosts_and_keeps_the_devices_rune() {
        let mut r = shipped("/cln.Node/Pay", "lnbc1");
        r.timestamp = 5;
        r.rune = b"device rune".to_vec();
        r.pubkey = vec![4; 65];
        let out = apply(vec![r.clone()], &fault("forge-signed", "/cln.Node/Pay"));
        let f = &out[0];
        assert_ne!(f.pubkey, r.pubkey);
        assert_eq!(f.rune, r.rune);
        assert!(skylight_client::signed_request::verifies(
            &f.pubkey,
            &f.request,
            f.timestamp,
            &f.signature
        ));
    }

    #[test]
    fn a_dropped_path_is_not_shipped_and_others_are() {
        let requests = vec![
            shipped("/cln.Node/Pay", "a"),
            shipped("/cln.Node/Getinfo", ""),
        ];
        let out = apply(requests, &fault("drop-signed", "/cln.Node/Pay"));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].uri, "/cln.Node/Getinfo");
    }

    #[test]
    fn an_altered_request_reads_the_same_but_its_bytes_differ() {
        let original = shipped("/cln.Node/Pay", "lnbcrt1");
        let out = apply(
            vec![original.clone()],
            &fault("alter-signed", "/cln.Node/Pay"),
        );
        assert_ne!(out[0].request, original.request);
        let read = PayRequest::decode(&out[0].request[5..]).unwrap();
        assert_eq!(read.bolt11, "lnbcrt1");
    }

    #[test]
    fn no_fault_ships_everything_unchanged() {
        let requests = vec![shipped("/cln.Node/Pay", "a")];
        assert_eq!(apply(requests.clone(), &[]), requests);
    }
}
