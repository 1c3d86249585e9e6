//! One file per RPC. `service.rs` wires them to the generated gRPC traits.

pub mod get_challenge;
pub mod list_invite_codes;
pub mod maybe_upgrade;
pub mod recover;
pub mod register;
pub mod report_signer_rejection;
pub mod service;

use skylight_certs::{DeviceCsr, Validity};

use crate::error::Error;
use crate::state::State;
use crate::store::records::DeviceRecord;

/// Parses the CSR of a register or recover and checks it is not made out for another node.
fn device_csr(csr: &[u8], node_id: &[u8; 33]) -> Result<DeviceCsr, Error> {
    let csr = DeviceCsr::from_pem(csr)?;
    if let Some(named) = csr.named_node()
        && &named != node_id
    {
        return Err(Error::InvalidArgument(format!(
            "the CSR is made out for node {}, but the request is for node {}",
            hex::encode(named),
            hex::encode(node_id)
        )));
    }
    Ok(csr)
}

/// Signs a device certificate under a tenant's CA; returns the chain and what to store.
fn issue_device(
    state: &State,
    tenant_ca: &skylight_certs::Authority,
    csr: &DeviceCsr,
    node_hex: &str,
    device: &str,
) -> Result<(String, DeviceRecord), Error> {
    let subject = skylight_certs::names::device_cn(node_hex, device);
    let leaf =
        tenant_ca.sign_device(csr, &subject, Validity::days(state.config.device_cert_days))?;
    let record = DeviceRecord {
        subject,
        issued_at: crate::store::now(),
        not_after: skylight_certs::not_after(&leaf)?,
    };
    Ok((state.device_chain(&leaf, tenant_ca.cert_pem()), record))
}
