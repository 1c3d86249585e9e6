//! One file per RPC. `service.rs` wires them to the generated gRPC traits.

pub mod add_outgoing_webhook;
pub mod approve_pairing;
pub mod delete_webhooks;
pub mod export_node;
pub mod get_challenge;
pub mod get_node_info;
pub mod get_pairing_data;
pub mod list_devices;
pub mod list_invite_codes;
pub mod list_outgoing_webhooks;
pub mod maybe_upgrade;
pub mod pair_device;
pub mod recover;
pub mod register;
pub mod report_signer_rejection;
pub mod revoke_device;
pub mod rotate_outgoing_webhook_secret;
pub mod schedule;
pub mod service;

use skylight_certs::{DeviceCsr, Validity};

use crate::error::Error;
use crate::state::State;
use crate::store::records::DeviceRecord;

/// Bounds on what a signer may have stored about itself: a tenant record is small.
const MAX_SIGNER_VERSION: usize = 64;
const MAX_STARTUP_MSGS: usize = 32;
const MAX_HSM_MSG: usize = 4096;

/// Checks the signer's self-description (Register, MaybeUpgrade) against those bounds and
/// returns the startup messages as stored.
fn signer_facts(
    version: &str,
    init_msg: &[u8],
    msgs: &[skylight_proto::scheduler::StartupMessage],
) -> Result<Vec<(String, String)>, Error> {
    if version.len() > MAX_SIGNER_VERSION {
        return Err(Error::InvalidArgument(format!(
            "the signer version is longer than {MAX_SIGNER_VERSION} bytes"
        )));
    }
    if init_msg.len() > MAX_HSM_MSG {
        return Err(Error::InvalidArgument(format!(
            "the init message is longer than {MAX_HSM_MSG} bytes"
        )));
    }
    if msgs.len() > MAX_STARTUP_MSGS {
        return Err(Error::InvalidArgument(format!(
            "more than {MAX_STARTUP_MSGS} startup messages"
        )));
    }
    msgs.iter()
        .map(|m| {
            if m.request.len() > MAX_HSM_MSG || m.response.len() > MAX_HSM_MSG {
                return Err(Error::InvalidArgument(format!(
                    "a startup message is longer than {MAX_HSM_MSG} bytes"
                )));
            }
            Ok((hex::encode(&m.request), hex::encode(&m.response)))
        })
        .collect()
}

/// Webhook ids as the wire has them (int64) as the store keeps them; a negative or zero id
/// names no webhook.
fn webhook_ids(ids: &[i64]) -> Result<Vec<u64>, Error> {
    if ids.is_empty() {
        return Err(Error::InvalidArgument(
            "name at least one webhook id (ListOutgoingWebhooks shows them)".into(),
        ));
    }
    ids.iter()
        .map(|&id| {
            u64::try_from(id).ok().filter(|&i| i > 0).ok_or_else(|| {
                Error::NotFound(format!("webhook {id} is not one of this node's webhooks"))
            })
        })
        .collect()
}

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
        public_key: hex::encode(csr.public_key_raw()),
        revoked_at: None,
    };
    Ok((state.device_chain(&leaf, tenant_ca.cert_pem()), record))
}
