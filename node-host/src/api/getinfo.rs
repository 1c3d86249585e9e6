//! `Getinfo`: who the node is and how it stands. Answers before the Lightning node runs
//! too (it starts when the signer first attaches), saying so in a warning.

use std::net::SocketAddr;

use skylight_proto::cln::{self as pb, getinfo_binding::GetinfoBindingType};

use super::{ApiError, ClnService};
use crate::node::Running;

/// What node-host reports as its version.
const VERSION: &str = concat!(
    "skylight-node-host v",
    env!("CARGO_PKG_VERSION"),
    " (LDK 0.2)"
);

/// Answers the call (the caller's device and signature were checked before it).
pub async fn getinfo(api: &ClnService) -> Result<pb::GetinfoResponse, ApiError> {
    let mut reply = pb::GetinfoResponse {
        id: api.node_id.to_vec(),
        // CLN's default colour: the node id's first three bytes after the prefix.
        color: api.node_id[1..4].to_vec(),
        version: VERSION.into(),
        network: api.network.to_string(),
        fees_collected_msat: Some(pb::Amount { msat: 0 }),
        ..Default::default()
    };
    match api.node.chain_height() {
        Some(h) => reply.blockheight = h,
        None => reply.warning_bitcoind_sync = Some("the chain cannot be reached".into()),
    }
    let Some(running) = api.node.running() else {
        reply.warning_lightningd_sync = Some(
            "the Lightning node has not started: it starts when the tenant's signer attaches"
                .into(),
        );
        return Ok(reply);
    };
    api.on_ldk(move || running_info(reply, &running)).await
}

fn running_info(mut reply: pb::GetinfoResponse, running: &Running) -> pb::GetinfoResponse {
    let cm = &running.ldk.channel_manager;
    reply.blockheight = cm.current_best_block().height;
    reply.num_peers = running.peer_manager.list_peers().len() as u32;
    for c in cm.list_channels() {
        if !c.is_channel_ready {
            reply.num_pending_channels += 1;
        } else if c.is_usable {
            reply.num_active_channels += 1;
        } else {
            reply.num_inactive_channels += 1;
        }
    }
    reply.our_features = Some(pb::GetinfoOurFeatures {
        init: be(cm.init_features().le_flags()),
        node: be(cm.node_features().le_flags()),
        channel: be(cm.channel_features().le_flags()),
        // LDK does not expose its invoice features outside its tests.
        invoice: Vec::new(),
    });
    reply.binding = vec![binding(running.p2p_addr)];
    reply
}

/// Feature bits as the wire carries them: big-endian.
fn be(le: &[u8]) -> Vec<u8> {
    le.iter().rev().copied().collect()
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
