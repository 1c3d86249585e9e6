//! Reaching the tenant's node: schedule it through the scheduler, then connect with the
//! device's identity.

use anyhow::{Context, Result};
use skylight_proto::cln::node_client::NodeClient;
use skylight_proto::scheduler::ScheduleRequest;
use tonic::transport::Channel;

use crate::tls::{self, Refused, TlsIdentity};

/// A node API client: the node is scheduled first (started if it was not running). A node
/// caught stopping (idle, say) is scheduled again: the scheduler starts a new one once the
/// old one has exited.
pub async fn connect(scheduler_uri: &str, device: &TlsIdentity) -> Result<NodeClient<Channel>> {
    let mut scheduler = tls::scheduler(scheduler_uri, device).await?;
    let mut attempt = 0;
    loop {
        let info = scheduler
            .schedule(ScheduleRequest::default())
            .await
            .map_err(|status| Refused {
                rpc: "Schedule",
                status,
            })?
            .into_inner();
        match tls::channel(&info.grpc_uri, device).await {
            Ok(channel) => return Ok(NodeClient::new(channel)),
            Err(e) if attempt < 20 => {
                tracing::debug!(error = %format!("{e:#}"), "the node is not reachable; scheduling it again");
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot reach the node at {}", info.grpc_uri));
            }
        }
    }
}

/// A node API client for the node at `node_uri` itself, with no scheduler (a node its owner
/// runs standalone).
pub async fn connect_direct(node_uri: &str, device: &TlsIdentity) -> Result<NodeClient<Channel>> {
    let channel = tls::channel(node_uri, device)
        .await
        .with_context(|| format!("cannot reach the node at {node_uri}"))?;
    Ok(NodeClient::new(channel))
}
