//! `ListPeers`: the peers the node is connected to, and those it has channels with.

use lightning_signer::bitcoin::secp256k1::PublicKey;
use skylight_proto::cln as pb;

use super::{ApiError, ClnService};
use crate::node::{Running, peers};

/// Answers the call (the caller's device and signature were checked before it).
pub async fn listpeers(
    api: &ClnService,
    req: pb::ListpeersRequest,
) -> Result<pb::ListpeersResponse, ApiError> {
    let wanted = match &req.id {
        Some(id) => Some(
            PublicKey::from_slice(id)
                .map_err(|_| ApiError::Invalid("id must be a 33-byte node id".into()))?,
        ),
        None => None,
    };
    let running = api.running("its peers").await?;
    api.on_ldk(move || list(&running, wanted)).await
}

fn list(running: &Running, wanted: Option<PublicKey>) -> pb::ListpeersResponse {
    let channels = running.ldk.channel_manager.list_channels();
    let connected = running.peer_manager.list_peers();
    let mut ids: Vec<PublicKey> = connected
        .iter()
        .map(|p| p.counterparty_node_id)
        .chain(channels.iter().map(|c| c.counterparty.node_id))
        .filter(|id| wanted.is_none_or(|w| w == *id))
        .collect();
    ids.sort();
    ids.dedup();
    let peers = ids
        .into_iter()
        .map(|id| {
            let live = connected.iter().find(|p| p.counterparty_node_id == id);
            let remote_addr = live.and_then(|p| p.socket_address.as_ref().map(|a| a.to_string()));
            // Where we would reconnect: the address we keep for it, else where it is now.
            let netaddr = peers::remembered(&running.ldk.store, &id)
                .map(|a| a.to_string())
                .or_else(|| remote_addr.clone());
            pb::ListpeersPeers {
                id: id.serialize().to_vec(),
                connected: live.is_some(),
                netaddr: netaddr.into_iter().collect(),
                // BOLT 9 order (most significant byte first); LDK keeps them the other way.
                features: live.map(|p| {
                    let mut flags = p.init_features.le_flags().to_vec();
                    flags.reverse();
                    flags
                }),
                remote_addr,
                num_channels: channels
                    .iter()
                    .filter(|c| c.counterparty.node_id == id)
                    .count() as u32,
            }
        })
        .collect();
    pb::ListpeersResponse { peers }
}
