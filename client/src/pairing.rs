//! Pairing a new device, Greenlight's way (its `Pairing` service): the new device waits in
//! `PairDevice`; a device of the node reads what it asks (`GetPairingData`) and approves it
//! (`ApprovePairing`), signing the approval with its own device key; the node's signer
//! checks that approval and mints the new device's rune.
//!
//! The approval is signed over device_id ‖ u64be(timestamp, seconds) ‖ node id (33 bytes)
//! ‖ device name ‖ restrictions, by the approving device's TLS key (P-256, 64-byte r ‖ s).

use anyhow::Result;
use skylight_proto::scheduler::ApprovePairingRequest;

use crate::signed_request::RequestSigner;

/// The gRPC path a pairing approval is checked as, for the approving device's rune: its
/// method, `approvepairing`, must be allowed.
pub const APPROVE_PATH: &str = "/cln.Node/ApprovePairing";

/// The bytes an approval's signature covers.
pub fn approval_message(req: &ApprovePairingRequest, node_id: &[u8; 33]) -> Vec<u8> {
    let mut m = req.device_id.as_bytes().to_vec();
    m.extend_from_slice(&req.timestamp.to_be_bytes());
    m.extend_from_slice(node_id);
    m.extend_from_slice(req.device_name.as_bytes());
    m.extend_from_slice(req.restrictions.as_bytes());
    m
}

/// Signs `req` with the approving device's key and rune, stamped `now_secs`.
pub fn sign_approval(
    device: &RequestSigner,
    rune: &str,
    node_id: &[u8; 33],
    now_secs: u64,
    mut req: ApprovePairingRequest,
) -> Result<ApprovePairingRequest> {
    req.timestamp = now_secs;
    req.pubkey = device.public_key();
    req.rune = rune.to_string();
    req.sig = device.sign_bytes(&approval_message(&req, node_id))?;
    Ok(req)
}

/// Whether `req`'s signature is its `pubkey`'s, for node `node_id`.
pub fn approval_verifies(req: &ApprovePairingRequest, node_id: &[u8; 33]) -> bool {
    crate::signed_request::verifies_bytes(&req.pubkey, &approval_message(req, node_id), &req.sig)
}
