//! `ConnectPeer`: connect to a Lightning peer (only with the signer attached: the noise
//! handshake needs the node key).

use std::net::{SocketAddr, ToSocketAddrs};

use lightning_signer::bitcoin::secp256k1::PublicKey;
use skylight_proto::cln::{self as pb, connect_address::ConnectAddressType};

use super::Ctx;
use crate::node::NodeError;

/// Answers `ConnectPeer`.
pub async fn handle(
    ctx: &Ctx<'_>,
    req: pb::ConnectRequest,
) -> Result<pb::ConnectResponse, NodeError> {
    let (id, addr) = peer_address(&req)?;
    let peer = ctx.node.connect(id, addr).await?;
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
/// or host and port apart (9735 by default). Hosts are resolved here; peers are not looked
/// up.
fn peer_address(req: &pb::ConnectRequest) -> Result<(PublicKey, SocketAddr), NodeError> {
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
    let addr: SocketAddr = (host.trim_matches(|c| c == '[' || c == ']'), port)
        .to_socket_addrs()
        .map_err(|e| invalid(&format!("cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| invalid(&format!("{host} has no address")))?;
    Ok((node_id, addr))
}

fn invalid(m: &str) -> NodeError {
    NodeError::Invalid(m.to_string())
}
