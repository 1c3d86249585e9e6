//! `Devices.RevokeDevice`: a device of the tenant revokes one of the tenant's devices (itself
//! too). From then on the scheduler and the tenant's node-host refuse its certificate; the
//! tenant's signer learns of it from `ListDevices` and refuses its rune.

use std::sync::Arc;

use skylight_proto::devices::{DeviceInfo, RevokeDeviceRequest};
use tonic::Request;

use crate::auth;
use crate::error::Error;
use crate::state::{State, blocking};

/// The longest device name a certificate carries.
const MAX_NAME: usize = 128;

/// Handles the RPC.
pub async fn handle(
    state: &Arc<State>,
    req: Request<RevokeDeviceRequest>,
) -> Result<DeviceInfo, Error> {
    let caller = auth::caller(&req)?;
    let tenant = auth::tenant(&req, "RevokeDevice")?;
    let name = req.into_inner().name;
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(Error::InvalidArgument(format!(
            "name the device to revoke (at most {MAX_NAME} bytes; `signer-cli devices` lists them)"
        )));
    }
    let st = state.clone();
    let record = {
        let name = name.clone();
        blocking(move || st.revocations.revoke(&tenant, &name)).await?
    };
    tracing::info!(node_id = %hex::encode(tenant), device = %name, by = %caller.describe(), "tenant revoked a device");
    Ok(super::list_devices::device_info(name, record))
}
