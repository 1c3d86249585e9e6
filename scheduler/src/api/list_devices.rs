//! `Devices.ListDevices`: every device certificate issued to the calling tenant.

use std::sync::Arc;

use skylight_proto::devices::{DeviceInfo, ListDevicesRequest, ListDevicesResponse};
use tonic::Request;

use crate::auth;
use crate::error::Error;
use crate::state::{State, blocking};
use crate::store::records::DeviceRecord;

/// Handles the RPC.
pub async fn handle(
    state: &Arc<State>,
    req: Request<ListDevicesRequest>,
) -> Result<ListDevicesResponse, Error> {
    let tenant = auth::tenant(&req, "ListDevices")?;
    let st = state.clone();
    let devices = blocking(move || st.store.devices(&tenant)).await?;
    Ok(ListDevicesResponse {
        devices: devices
            .into_iter()
            .map(|(n, r)| device_info(n, r))
            .collect(),
    })
}

/// The wire form of a device's record.
pub fn device_info(name: String, r: DeviceRecord) -> DeviceInfo {
    DeviceInfo {
        name,
        subject: r.subject,
        issued_at: r.issued_at,
        not_after: r.not_after,
        revoked_at: r.revoked_at.unwrap_or_default(),
        public_key: hex::decode(&r.public_key).unwrap_or_default(),
    }
}
