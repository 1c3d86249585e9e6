//! `ConnectPeer`: connect to a Lightning peer (only with the signer attached: the noise
//! handshake needs the node key).

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use lightning_signer::bitcoin::secp256k1::PublicKey;
use skylight_proto::cln::{self as pb, connect_address::ConnectAddressType};

use super::{ApiError, ClnService};

/// How long a connection may take to complete its handshake.
const HANDSHAKE: Duration = Duration::from_secs(20);

/// Answers the call (the caller's device and signature were checked before it).
pub async fn connect(
    api: &ClnService,
    req: pb::ConnectRequest,
) -> Result<pb::ConnectResponse, ApiError> {
    // CLN takes `id`, `id@host` or `id@host:port`, or host and port apart.
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
    let running = api.node_with_signer("connection's handshake").await?;
    let pm = running.peer_manager.clone();
    let peer = {
        let pm = pm.clone();
        move || pm.peer_by_node_id(&node_id)
    };
    if api.on_ldk(peer.clone()).await?.is_none() {
        // The handshake's first step signs (ECDH): on the LDK runtime, like the rest of the
        // connection.
        let connecting = api
            .ldk
            .spawn(async move {
                let c = lightning_net_tokio::connect_outbound(pm, node_id, addr).await?;
                tokio::spawn(c);
                Some(())
            })
            .await
            .map_err(|e| ApiError::Internal(format!("connection task failed: {e}")))?;
        if connecting.is_none() {
            return Err(ApiError::Unreachable(format!("cannot connect to {addr}")));
        }
        let until = tokio::time::Instant::now() + HANDSHAKE;
        while api.on_ldk(peer.clone()).await?.is_none() {
            if tokio::time::Instant::now() >= until {
                return Err(ApiError::Unreachable(format!(
                    "{node_id} at {addr} did not complete the handshake"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    crate::node::peers::remember(&running.ldk.store, &node_id, addr);
    let peer = api
        .on_ldk(peer)
        .await?
        .ok_or_else(|| ApiError::Unreachable(format!("{node_id} disconnected at once")))?;
    let kind = match addr {
        SocketAddr::V4(_) => ConnectAddressType::Ipv4,
        SocketAddr::V6(_) => ConnectAddressType::Ipv6,
    };
    Ok(pb::ConnectResponse {
        id: node_id.serialize().to_vec(),
        features: peer
            .init_features
            .le_flags()
            .iter()
            .rev()
            .copied()
            .collect(),
        direction: if peer.is_inbound_connection { 0 } else { 1 },
        address: Some(pb::ConnectAddress {
            item_type: kind as i32,
            socket: None,
            address: Some(addr.ip().to_string()),
            port: Some(addr.port() as u32),
        }),
    })
}

fn invalid(m: &str) -> ApiError {
    ApiError::Invalid(m.to_string())
}
