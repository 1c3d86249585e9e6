//! `Getinfo`: who the node is and how it stands. Answers before the Lightning node runs
//! too (it starts when the signer first attaches), saying so in a warning.

use std::net::SocketAddr;

use skylight_proto::cln::{
    self as pb, getinfo_address::GetinfoAddressType, getinfo_binding::GetinfoBindingType,
};

use super::Ctx;
use super::convert::msat;
use crate::node::NodeError;
use crate::node::chain_health::ChainStatus;

/// What node-host reports as its version.
const VERSION: &str = concat!(
    "skylight-node-host v",
    env!("CARGO_PKG_VERSION"),
    " (LDK 0.2)"
);

/// Answers `Getinfo`.
pub async fn handle(
    ctx: &Ctx<'_>,
    _req: pb::GetinfoRequest,
) -> Result<pb::GetinfoResponse, NodeError> {
    let info = ctx.node.info().await?;
    let id = info.id.serialize();
    let mut reply = pb::GetinfoResponse {
        id: id.to_vec(),
        // CLN's default colour: the node id's first three bytes after the prefix.
        color: id[1..4].to_vec(),
        version: VERSION.into(),
        network: info.network.to_string(),
        fees_collected_msat: msat(0),
        ..Default::default()
    };
    if let Some(h) = info.chain_height {
        reply.blockheight = h;
    }
    reply.warning_bitcoind_sync = match &info.chain {
        ChainStatus::Answers { behind, .. } => behind.clone(),
        ChainStatus::Down(why) => Some(format!(
            "the chain source does not answer ({why}); the node catches up when it does"
        )),
        ChainStatus::WrongNetwork(why) => Some(why.clone()),
        ChainStatus::Unknown => Some("the chain source has not been reached yet".into()),
    };
    let Some(running) = info.running else {
        reply.warning_lightningd_sync = Some(
            "the Lightning node has not started: it starts when the tenant's signer attaches"
                .into(),
        );
        return Ok(reply);
    };
    reply.blockheight = running.height;
    reply.num_peers = running.peers;
    reply.num_pending_channels = running.channels.pending;
    reply.num_active_channels = running.channels.active;
    reply.num_inactive_channels = running.channels.inactive;
    reply.our_features = Some(pb::GetinfoOurFeatures {
        init: running.features.init,
        node: running.features.node,
        channel: running.features.channel,
        // LDK does not expose its invoice features outside its tests.
        invoice: Vec::new(),
    });
    reply.binding = vec![binding(running.p2p_addr)];
    reply.address = running
        .p2p_announce
        .iter()
        .map(|host| announced(host, running.p2p_addr.port()))
        .collect();
    Ok(reply)
}

fn announced(host: &str, port: u16) -> pb::GetinfoAddress {
    let kind = match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => GetinfoAddressType::Ipv4,
        Ok(std::net::IpAddr::V6(_)) => GetinfoAddressType::Ipv6,
        Err(_) => GetinfoAddressType::Dns,
    };
    pb::GetinfoAddress {
        item_type: kind as i32,
        port: port as u32,
        address: Some(host.to_string()),
    }
}

fn binding(addr: SocketAddr) -> pb::GetinfoBinding {
    let kind = match addr {
        SocketAddr::V4(_) => GetinfoBindingType::Ipv4,
        SocketAddr::V6(_) => GetinfoBindingType::Ipv6,
    };
    pb::GetinfoBinding {
        item_type: kind as i32,
        address: Some(addr.ip().to_string()),
        port: Some(addr.port() as u32),
        ..Default::default()
    }
}
