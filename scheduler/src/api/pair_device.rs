//! `Pairing.PairDevice`: a new device (nobody identity: it has no certificate yet) asks to
//! join a tenant and waits until a device of the tenant approves (see `approve_pairing`),
//! the session expires (DEADLINE_EXCEEDED), or the tenant's signer refuses
//! (PERMISSION_DENIED).

use std::sync::Arc;

use skylight_certs::DeviceCsr;
use skylight_proto::scheduler::{PairDeviceRequest, PairDeviceResponse};
use tonic::Request;

use crate::auth;
use crate::error::Error;
use crate::pairing::SESSION_TTL;
use crate::state::State;

/// The longest device name (it goes into the certificate's subject).
pub const MAX_NAME: usize = 64;
/// The longest description and restrictions.
const MAX_TEXT: usize = 1024;

/// Checks a device name: it becomes the last part of `/users/<node id>/<name>`.
pub fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "the device name must be 1 to {MAX_NAME} letters, digits, '-', '_' or '.'"
        )))
    }
}

/// Handles the RPC.
pub async fn handle(
    state: &Arc<State>,
    req: Request<PairDeviceRequest>,
) -> Result<PairDeviceResponse, Error> {
    auth::caller(&req)?;
    let req = req.into_inner();
    check_name(&req.device_name)?;
    if req.description.len() > MAX_TEXT || req.restrictions.len() > MAX_TEXT {
        return Err(Error::InvalidArgument(format!(
            "the description and the restrictions may have at most {MAX_TEXT} bytes each"
        )));
    }
    let csr = DeviceCsr::from_pem(&req.csr)?;
    if hex::encode(csr.public_key_raw()) != req.device_id.to_lowercase() {
        return Err(Error::InvalidArgument(
            "device_id must be the hex of the CSR's public key".into(),
        ));
    }
    let device_id = req.device_id.clone();
    let outcome = state.pairings.open(req)?;
    tracing::info!(%device_id, "a new device waits to be paired");
    // The session goes if this call does (the device gave up): no approval completes it.
    struct Close<'a>(&'a State, &'a str);
    impl Drop for Close<'_> {
        fn drop(&mut self) {
            self.0.pairings.close(self.1);
        }
    }
    let _close = Close(state, &device_id);
    match tokio::time::timeout(SESSION_TTL, outcome).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) => Err(Error::Internal("the pairing session was dropped".into())),
        Err(_) => Err(Error::DeadlineExceeded(format!(
            "no device of the node approved this pairing within {} s",
            SESSION_TTL.as_secs()
        ))),
    }
}
