//! `signer-cli pair` (the new device: it has no seed) and `signer-cli approve` (a device of
//! the node, which the node's signer must recognise), as Greenlight's pairing goes.

use anyhow::{Context, Result, bail};
use skylight_client::device::DeviceRequest;
use skylight_client::device_dir::{DataDir, Settings};
use skylight_client::signed_request::RequestSigner;
use skylight_client::{creds, tls};
use skylight_proto::scheduler::pairing_client::PairingClient;
use skylight_proto::scheduler::{ApprovePairingRequest, GetPairingDataRequest, PairDeviceRequest};

use crate::SchedulerArgs;

/// What the new device asks to be allowed.
pub struct Asked {
    /// Its name.
    pub name: String,
    /// What it is, for the approving device to show.
    pub description: String,
    /// Restrictions beyond its key (rune syntax: `&` between, `|` within).
    pub restrictions: String,
    /// Its network.
    pub network: String,
}

/// The new device: makes its key, asks to be paired, waits, and stores its credentials.
pub async fn pair(dir: &DataDir, args: &SchedulerArgs, asked: Asked) -> Result<()> {
    if dir.credentials().exists() {
        bail!(
            "{} holds credentials already: pair into a new data directory",
            dir.0.display()
        );
    }
    let nobody = crate::nobody(args)?;
    // Greenlight's placeholder subject: the scheduler names the device under its node.
    let request = DeviceRequest::new(&format!("/users/3030/{}", asked.name))?;
    let key = rcgen::KeyPair::from_pem(&request.key_pem)?;
    let device_id = hex::encode(key.public_key_raw());
    let restrictions = std::iter::once(format!("pubkey={device_id}"))
        .chain((!asked.restrictions.is_empty()).then(|| asked.restrictions.clone()))
        .collect::<Vec<_>>()
        .join("&");
    eprintln!("pairing device id: {device_id}");
    eprintln!("on a device of the node, run:  signer-cli approve {device_id}");
    eprintln!("waiting for the approval…");
    let mut c = PairingClient::new(tls::channel(&args.scheduler, &nobody).await?);
    let paired = c
        .pair_device(PairDeviceRequest {
            device_id,
            csr: request.csr_pem.into_bytes(),
            device_name: asked.name.clone(),
            description: asked.description,
            restrictions,
        })
        .await
        .map_err(|status| tls::Refused {
            rpc: "PairDevice",
            status,
        })?
        .into_inner();
    let mut device = creds::device(&paired.device_cert, &request.key_pem, &nobody.ca_pem);
    device.rune = paired.rune;
    let cn = skylight_certs::subject_cn(&paired.device_cert)?;
    let node_id = cn
        .split('/')
        .nth(2)
        .context("the paired certificate names no node")?
        .to_string();
    std::fs::create_dir_all(&dir.0)?;
    creds::save(&dir.credentials(), &device)?;
    Settings {
        network: asked.network,
        node_id: node_id.clone(),
        scheduler: Some(args.scheduler.clone()),
    }
    .save(dir)?;
    println!("paired with node {node_id} as {}", asked.name);
    Ok(())
}

/// A device of the node approves the new device `device_id`, after showing what it asks
/// (and asking, unless `yes`).
pub async fn approve(dir: &DataDir, device_id: &str, yes: bool) -> Result<()> {
    let (uri, identity, settings) = crate::device_context(dir)?;
    let mut c = PairingClient::new(tls::channel(&uri, &identity).await?);
    // The new device may not have reached the scheduler yet (the id travels faster).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let data = loop {
        match c
            .get_pairing_data(GetPairingDataRequest {
                device_id: device_id.to_string(),
            })
            .await
        {
            Ok(d) => break d.into_inner(),
            Err(s) if s.code() == tonic::Code::NotFound && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(status) => {
                return Err(tls::Refused {
                    rpc: "GetPairingData",
                    status,
                }
                .into());
            }
        }
    };
    let csr = skylight_certs::DeviceCsr::from_pem(&data.csr)?;
    if hex::encode(csr.public_key_raw()) != device_id.to_lowercase() {
        bail!("the pairing's certificate request is not for the key {device_id}: not approved");
    }
    let own = format!("pubkey={}", device_id.to_lowercase());
    if data.restrictions.split('&').filter(|r| *r == own).count() != 1 {
        bail!("the pairing does not bind its rune to its own key: not approved");
    }
    println!("device:       {}", data.device_name);
    println!("description:  {}", data.description);
    println!("restrictions: {}", data.restrictions);
    if !yes && !crate::confirmed("approve?")? {
        println!("not approved");
        return Ok(());
    }
    let device = creds::load(&dir.credentials())?;
    let signer = RequestSigner::new(&device.key)?;
    let node_id =
        skylight_certs::parse_node_id(&settings.node_id).context("bad node id in settings")?;
    let approval = skylight_client::pairing::sign_approval(
        &signer,
        &crate::node_cmd::device_rune(dir)?,
        &node_id,
        skylight_client::signed_request::now_ms() / 1000,
        ApprovePairingRequest {
            device_id: device_id.to_string(),
            device_name: data.device_name.clone(),
            restrictions: data.restrictions,
            ..Default::default()
        },
    )?;
    c.approve_pairing(approval)
        .await
        .map_err(|status| tls::Refused {
            rpc: "ApprovePairing",
            status,
        })?;
    println!("approved {}", data.device_name);
    Ok(())
}
