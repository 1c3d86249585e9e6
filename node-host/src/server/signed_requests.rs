//! Signed client requests: Greenlight's clients sign every node call with their device key.
//!
//! Headers: `glauthpubkey` (65-byte uncompressed P-256 key), `glauthsig` (64-byte ECDSA
//! P-256/SHA-256 over the request body ‖ u64be(`glts`)), `glts` (u64be milliseconds),
//! `glrune`, all base64 but the rune. node-host checks the signature, that the key is the
//! one the caller's TLS certificate carries (so the signature binds to the authenticated
//! device), that the timestamp is fresh, and that a call with effects was not seen before
//! (an identical read is served again: see [`is_read`]); it keeps
//! the signed requests of calls in progress to ship with signing requests, so the signer
//! can match what it is asked to sign against what a device asked for.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use skylight_client::runes::{self, RuneContext};
use skylight_client::signed_request::{self, now_ms};
use skylight_proto::greenlight::PendingRequest;
use tonic::Status;

/// Calls that are not signed: the signer's own plumbing (Greenlight's signer does not sign
/// these).
pub const UNSIGNED_PATHS: &[&str] = &[
    "/greenlight.Node/StreamHsmRequests",
    "/greenlight.Node/RespondHsmRequest",
];

/// The most signed requests kept for signers, by count and by total bytes (they travel
/// with every signing request).
const MAX_RECENT: usize = 256;
const MAX_RECENT_BYTES: usize = 1 << 20;

/// Base64 as Greenlight writes it (no padding), accepting padding too.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const B64_URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The signature headers of one call.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    /// `glauthpubkey`.
    pub pubkey: Option<String>,
    /// `glauthsig`.
    pub signature: Option<String>,
    /// `glts`.
    pub timestamp: Option<String>,
    /// `glrune`.
    pub rune: Option<String>,
}

impl Headers {
    /// Reads them from HTTP headers.
    pub fn from_http(h: &http::HeaderMap) -> Self {
        let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
        Headers {
            pubkey: get("glauthpubkey"),
            signature: get("glauthsig"),
            timestamp: get("glts"),
            rune: get("glrune"),
        }
    }
}

/// Checks signed requests and remembers recent ones.
pub struct Verifier {
    window: Duration,
    seen: Mutex<Seen>,
    recent: Mutex<VecDeque<PendingRequest>>,
}

#[derive(Default)]
struct Seen {
    ids: HashSet<[u8; 32]>,
    order: VecDeque<(u64, [u8; 32])>,
}

impl Verifier {
    /// Timestamps more than `window` away from now are refused.
    pub fn new(window: Duration) -> Self {
        Verifier {
            window,
            seen: Mutex::default(),
            recent: Mutex::default(),
        }
    }

    /// Checks one call to `path` with `body` (the gRPC frame as sent), from a caller whose
    /// TLS certificate carries `device_key` (65-byte uncompressed point).
    pub fn check(
        &self,
        path: &str,
        headers: &Headers,
        body: &[u8],
        device_key: Option<&[u8]>,
    ) -> Result<(), Status> {
        if UNSIGNED_PATHS.contains(&path) {
            return Ok(());
        }
        let (Some(pk), Some(sig), Some(ts)) =
            (&headers.pubkey, &headers.signature, &headers.timestamp)
        else {
            return Err(Status::unauthenticated(
                "node calls must be signed by the device key (glauthpubkey, glauthsig and glts headers)",
            ));
        };
        let bad = |what: &str| Status::unauthenticated(format!("malformed {what} header"));
        let pubkey = B64.decode(pk).map_err(|_| bad("glauthpubkey"))?;
        let signature = B64.decode(sig).map_err(|_| bad("glauthsig"))?;
        let ts_bytes: [u8; 8] = B64
            .decode(ts)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("glts"))?;
        let timestamp = u64::from_be_bytes(ts_bytes);

        if device_key != Some(pubkey.as_slice()) {
            return Err(Status::permission_denied(
                "the request is signed by a key other than this device's TLS key",
            ));
        }
        if !signed_request::verifies(&pubkey, body, timestamp, &signature) {
            return Err(Status::unauthenticated(
                "the request signature (glauthsig) does not verify",
            ));
        }

        // What the device's rune restricts, refused here early and with the restriction
        // named. Only the signer can tell the rune is authentic, and it decides what counts;
        // a call without a rune is left to it.
        if let Some(rune) = headers.rune.as_deref().filter(|r| !r.is_empty()) {
            let call = RuneContext {
                uri: path.to_string(),
                pubkey: pubkey.clone(),
                time: timestamp / 1000,
            };
            runes::restrictions_allow(rune, &call).map_err(|why| {
                Status::permission_denied(format!(
                    "this device's rune does not allow {path}: {why}"
                ))
            })?;
        }

        let now = now_ms();
        let skew = now.abs_diff(timestamp);
        if skew > self.window.as_millis() as u64 {
            return Err(Status::unauthenticated(format!(
                "the request timestamp is {} s away from the node's clock (at most {} s allowed); check the device's clock",
                skew / 1000,
                self.window.as_secs()
            )));
        }

        // A read may come twice with the same bytes: gl-client polls in tight loops, and two
        // identical calls can fall in one millisecond. Served again it changes nothing and
        // shows only what this device may read anyway; a call with effects must not be.
        if is_read(path) {
            self.keep(path, headers, body, signature, pubkey, timestamp);
            return Ok(());
        }

        // Replays are caught on what was signed, not on the signature bytes: an ECDSA
        // signature can be altered into another valid one for the same message.
        let id = signed_request::request_id(&pubkey, body, timestamp);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let horizon = now.saturating_sub(self.window.as_millis() as u64);
            while let Some((ts, old)) = seen.order.front().copied() {
                if ts >= horizon {
                    break;
                }
                seen.order.pop_front();
                seen.ids.remove(&old);
            }
            if !seen.ids.insert(id) {
                return Err(Status::unauthenticated(
                    "this signed request was already used (replay)",
                ));
            }
            seen.order.push_back((timestamp, id));
        }
        self.keep(path, headers, body, signature, pubkey, timestamp);
        Ok(())
    }

    /// Keeps a checked call's signed request, to ship with signing requests while the call
    /// is in progress.
    fn keep(
        &self,
        path: &str,
        headers: &Headers,
        body: &[u8],
        signature: Vec<u8>,
        pubkey: Vec<u8>,
        timestamp: u64,
    ) {
        let rune = headers
            .rune
            .as_deref()
            .and_then(|r| B64_URL.decode(r).ok())
            .unwrap_or_default();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.push_back(PendingRequest {
            request: body.to_vec(),
            uri: path.to_string(),
            signature,
            pubkey,
            timestamp,
            rune,
        });
        while recent.len() > MAX_RECENT
            || recent.iter().map(|r| r.request.len()).sum::<usize>() > MAX_RECENT_BYTES
        {
            recent.pop_front();
        }
    }

    /// The call carrying `headers` is over: its request no longer travels to signers. A
    /// signer matches what it signs against calls in progress, so a finished call cannot
    /// authorise more; and every signing request would otherwise carry, and the signer
    /// verify, every call of the window (payments slowed as they accumulated).
    pub fn finished(&self, headers: &Headers) {
        let Some(signature) = headers.signature.as_ref().and_then(|s| B64.decode(s).ok()) else {
            return;
        };
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.retain(|r| r.signature != signature);
    }

    /// Signed requests of the calls in progress (at most a window old), oldest first, for
    /// signers.
    pub fn recent(&self) -> Vec<PendingRequest> {
        let horizon = now_ms().saturating_sub(self.window.as_millis() as u64);
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        while recent.front().is_some_and(|r| r.timestamp < horizon) {
            recent.pop_front();
        }
        recent.iter().cloned().collect()
    }
}

/// Whether the call at `path` only reads: CLN's and Greenlight's `Get…` and `List…` calls.
pub fn is_read(path: &str) -> bool {
    let method = path.rsplit('/').next().unwrap_or_default();
    method.starts_with("Get") || method.starts_with("List")
}

/// The public key (uncompressed point) in a DER certificate.
pub fn certificate_key(der: &[u8]) -> Option<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.public_key().subject_public_key.data.to_vec())
}

#[cfg(test)]
mod tests;
