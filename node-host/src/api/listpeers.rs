//! `ListPeers`: the peers the node is connected to, and those it has channels with.

use lightning_signer::bitcoin::secp256k1::PublicKey;
use skylight_proto::cln as pb;

use super::Ctx;
use crate::node::NodeError;

/// Answers `ListPeers`.
pub async fn handle(
    ctx: &Ctx<'_>,
    req: pb::ListpeersRequest,
) -> Result<pb::ListpeersResponse, NodeError> {
    let only = match &req.id {
        Some(id) => Some(
            PublicKey::from_slice(id)
                .map_err(|_| NodeError::Invalid("id must be a 33-byte node id".into()))?,
        ),
        None => None,
    };
    let peers = ctx
        .node
        .peers(only)
        .await?
        .into_iter()
        .map(|p| pb::ListpeersPeers {
            id: p.id.serialize().to_vec(),
            connected: p.connected,
            netaddr: p.netaddr.into_iter().collect(),
            features: p.features,
            remote_addr: p.remote_addr,
            num_channels: p.num_channels,
        })
        .collect();
    Ok(pb::ListpeersResponse { peers })
}
