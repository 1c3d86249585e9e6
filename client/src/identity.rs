//! Register and recover: prove the node key with a signed challenge, get a device
//! certificate for a key made here.

use anyhow::{Context, Result};
use skylight_certs::names;
use skylight_proto::credentials::Device;
use skylight_proto::scheduler::scheduler_client::SchedulerClient;
use skylight_proto::scheduler::{
    ChallengeRequest, ChallengeScope, RecoveryRequest, RegistrationRequest,
};

use crate::creds;
use crate::device::DeviceRequest;
use crate::keys::NodeKeys;
use crate::tls::{self, TlsIdentity};
use tonic::transport::Channel;

/// The signer protocol version sent on register.
pub const SIGNER_VERSION: &str = concat!("skylight-v", env!("CARGO_PKG_VERSION"));

/// Registers the node with the scheduler at `uri`, connecting as `nobody`. Returns the new
/// device credentials. A refusal is a `tonic::Status` inside the error.
pub async fn register(
    uri: &str,
    nobody: &TlsIdentity,
    keys: &NodeKeys,
    network: &str,
    invite: Option<&str>,
) -> Result<Device> {
    let mut scheduler = tls::scheduler(uri, nobody).await?;
    let node_id = keys.node_id_bytes();
    let challenge = challenge(&mut scheduler, ChallengeScope::Register, &node_id).await?;
    let request = DeviceRequest::new(&names::device_cn(
        &hex::encode(node_id),
        names::REGISTER_DEVICE,
    ))?;
    let reply = scheduler
        .register(RegistrationRequest {
            node_id: node_id.to_vec(),
            network: network.to_string(),
            signature: keys.sign_challenge(&challenge).to_vec(),
            challenge,
            signer_proto: SIGNER_VERSION.to_string(),
            csr: request.csr_pem.into_bytes(),
            invite_code: invite.unwrap_or_default().to_string(),
            ..Default::default()
        })
        .await
        .map_err(refused("Register"))?
        .into_inner();
    finish(
        &reply.device_cert,
        &reply.device_key,
        request.key_pem,
        nobody,
    )
}

/// Recovers the node: a new device certificate for a node registered before.
pub async fn recover(uri: &str, nobody: &TlsIdentity, keys: &NodeKeys) -> Result<Device> {
    let mut scheduler = tls::scheduler(uri, nobody).await?;
    let node_id = keys.node_id_bytes();
    let challenge = challenge(&mut scheduler, ChallengeScope::Recover, &node_id).await?;
    let device = names::recovered_device(&challenge);
    let request = DeviceRequest::new(&names::device_cn(&hex::encode(node_id), &device))?;
    let reply = scheduler
        .recover(RecoveryRequest {
            node_id: node_id.to_vec(),
            signature: keys.sign_challenge(&challenge).to_vec(),
            challenge,
            csr: request.csr_pem.into_bytes(),
        })
        .await
        .map_err(refused("Recover"))?
        .into_inner();
    finish(
        &reply.device_cert,
        &reply.device_key,
        request.key_pem,
        nobody,
    )
}

fn finish(cert: &str, server_key: &str, our_key: String, nobody: &TlsIdentity) -> Result<Device> {
    skylight_certs::subject_cn(cert).context("the scheduler returned no usable certificate")?;
    // An empty device_key means the scheduler signed our CSR and we keep our own key, as
    // Greenlight's clients do; a legacy scheduler may instead send a key it made.
    let key = if server_key.is_empty() {
        our_key
    } else {
        server_key.to_string()
    };
    Ok(creds::device(cert, &key, &nobody.ca_pem))
}

/// Asks for a challenge for `scope` and this node.
async fn challenge(
    scheduler: &mut SchedulerClient<Channel>,
    scope: ChallengeScope,
    node_id: &[u8; 33],
) -> Result<Vec<u8>> {
    Ok(scheduler
        .get_challenge(ChallengeRequest {
            scope: scope as i32,
            node_id: node_id.to_vec(),
        })
        .await
        .map_err(refused("GetChallenge"))?
        .into_inner()
        .challenge)
}

/// Turns a refusal into an error that reads well and still carries the status.
fn refused(rpc: &'static str) -> impl FnOnce(tonic::Status) -> anyhow::Error {
    move |status| tls::Refused { rpc, status }.into()
}
