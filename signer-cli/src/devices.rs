//! `signer-cli devices` and `signer-cli revoke`: the tenant's devices at the scheduler, and
//! revoking one.
//!
//! Revoking records the device's key in this device's own list first, durably: from then on
//! this signer refuses the device's requests whatever the scheduler or the node say. Then
//! the scheduler is told, and it and the node refuse the device's certificate.

use anyhow::{Context, Result, bail};
use skylight_client::device_dir::DataDir;
use skylight_client::signer::revoked::RevokedKeys;
use skylight_proto::devices::devices_client::DevicesClient;
use skylight_proto::devices::{DeviceInfo, ListDevicesRequest, RevokeDeviceRequest};
use tonic::transport::Channel;

async fn client(dir: &DataDir) -> Result<DevicesClient<Channel>> {
    let (uri, device, _) = crate::device_context(dir)?;
    Ok(DevicesClient::new(
        skylight_client::tls::channel(&uri, &device).await?,
    ))
}

async fn listed(c: &mut DevicesClient<Channel>) -> Result<Vec<DeviceInfo>> {
    Ok(c.list_devices(ListDevicesRequest {})
        .await
        .map_err(|s| anyhow::anyhow!("the scheduler refused ListDevices: {}", s.message()))?
        .into_inner()
        .devices)
}

/// Prints the tenant's devices, this one marked.
pub async fn list(dir: &DataDir) -> Result<()> {
    let mine = this_device(dir)?;
    let devices = listed(&mut client(dir).await?).await?;
    println!("{:<40} {:<12} {:<12} KEY", "NAME", "ISSUED", "REVOKED");
    for d in devices {
        let revoked = match d.revoked_at {
            0 => "-".to_string(),
            t => t.to_string(),
        };
        let marker = if d.name == mine { " (this device)" } else { "" };
        println!(
            "{:<40} {:<12} {:<12} {}{marker}",
            d.name,
            d.issued_at,
            revoked,
            hex::encode(&d.public_key)
        );
    }
    Ok(())
}

/// Revokes the device `name`.
pub async fn revoke(dir: &DataDir, name: &str) -> Result<()> {
    let mut c = client(dir).await?;
    let Some(target) = listed(&mut c).await?.into_iter().find(|d| d.name == name) else {
        bail!("this node has no device named {name:?}: `signer-cli devices` lists them");
    };
    if target.public_key.is_empty() {
        eprintln!(
            "warning: the scheduler has no key recorded for {name:?} (issued before keys were); this signer can refuse only its certificate, through the scheduler and the node"
        );
    }
    RevokedKeys::at(dir.revoked_devices())
        .add(&[(target.public_key.clone(), name.to_string())])
        .context("cannot record the revocation on this device")?;
    let done = c
        .revoke_device(RevokeDeviceRequest {
            name: name.to_string(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("the scheduler refused RevokeDevice: {}", s.message()))?
        .into_inner();
    println!("revoked {} at {}", done.name, done.revoked_at);
    Ok(())
}

/// This device's name, from its certificate.
fn this_device(dir: &DataDir) -> Result<String> {
    let creds = skylight_client::creds::load(&dir.credentials())?;
    let cert = String::from_utf8_lossy(&creds.cert).into_owned();
    let cn = skylight_certs::subject_cn(&cert).context("the device certificate has no subject")?;
    Ok(cn.rsplit('/').next().unwrap_or_default().to_string())
}
