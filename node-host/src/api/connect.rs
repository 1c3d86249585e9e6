//! `ConnectPeer`: connect to a Lightning peer (only with the signer attached: the noise
//! handshake needs the node key).

use std::net::SocketAddr;

use lightning_signer::bitcoin::secp256k1::PublicKey;
use skylight_proto::cln::{self as pb, connect_address::ConnectAddressType};

use super::Ctx;
use crate::node::NodeError;

/// Answers `ConnectPeer`.
pub async fn handle(
    ctx: &Ctx<'_>,
    req: pb::ConnectRequest,
) -> Result<pb::ConnectResponse, NodeError> {
    let (id, host, port) = peer_address(&req)?;
    // A name may resolve to several addresses (`localhost`: ::1 and 127.0.0.1): each is
    // tried in turn, as CLN does.
    let mut tried = None;
    let mut connected = None;
    for addr in resolve(&host, port).await? {
        match ctx.node.connect(id, addr).await {
            Ok(peer) => {
                connected = Some((peer, addr));
                break;
            }
            Err(e @ NodeError::Unreachable(_)) => tried = Some(e),
            Err(e) => return Err(e),
        }
    }
    let Some((peer, addr)) = connected else {
        return Err(tried.unwrap_or_else(|| invalid(&format!("{host} has no address"))));
    };
    let kind = match addr {
        SocketAddr::V4(_) => ConnectAddressType::Ipv4,
        SocketAddr::V6(_) => ConnectAddressType::Ipv6,
    };
    Ok(pb::ConnectResponse {
        id: id.serialize().to_vec(),
        features: peer.features.unwrap_or_default(),
        direction: if peer.inbound { 0 } else { 1 },
        address: Some(pb::ConnectAddress {
            item_type: kind as i32,
            socket: None,
            address: Some(addr.ip().to_string()),
            port: Some(addr.port() as u32),
        }),
    })
}

/// The peer and where it listens, as CLN takes them: `id`, `id@host` or `id@host:port`,
/// or host and port apart (9735 by default). The host is an address or a name; peers are
/// not looked up in the gossip.
fn peer_address(req: &pb::ConnectRequest) -> Result<(PublicKey, String, u16), NodeError> {
    let (id, host, port) = match req.id.split_once('@') {
        Some((id, rest)) => match rest.rsplit_once(':') {
            Some((h, p)) => (
                id.to_string(),
                Some(h.to_string()),
                Some(
                    p.parse::<u32>()
                        .map_err(|_| invalid("bad port in id@host:port"))?,
                ),
            ),
            None => (id.to_string(), Some(rest.to_string()), req.port),
        },
        None => (req.id.clone(), req.host.clone(), req.port),
    };
    let node_id: PublicKey = id
        .parse()
        .map_err(|_| invalid("id must be a node id: 66 hex characters"))?;
    let host =
        host.ok_or_else(|| invalid("a host is required (id@host:port): peers are not looked up"))?;
    let port = u16::try_from(port.unwrap_or(9735)).map_err(|_| invalid("port out of range"))?;
    Ok((node_id, host, port))
}

/// The addresses `host` resolves to (the system's resolver, off the async workers).
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, NodeError> {
    let bare = host.trim_matches(|c| c == '[' || c == ']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|e| invalid(&format!("cannot resolve {host}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(invalid(&format!("{host} has no address")));
    }
    Ok(addrs)
}

fn invalid(m: &str) -> NodeError {
    NodeError::Invalid(m.to_string())
}
