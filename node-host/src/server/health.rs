//! A plaintext gRPC health service on a port of its own (`--health-listen`), for a
//! cluster's readiness probe: the kubelet's gRPC probe cannot present the client
//! certificate the node server asks of everyone. It says one thing, whether the node server
//! serves: NOT_SERVING while the node starts and from the moment it begins to stop,
//! SERVING in between. (The node server's port accepts connections from the start, before
//! the node is up, so a TCP probe on it passes too early.) Nothing else is on this port,
//! and a probe is never activity: it does not keep an idle node running.

use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// The overall status (service "") and the node's two services'.
const SERVICES: &[&str] = &["", "greenlight.Node", "cln.Node"];

/// The health service's status, as node-host sets it.
#[derive(Clone)]
pub struct Health(HealthReporter);

impl Health {
    /// Sets every service's status.
    pub async fn set(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for name in SERVICES {
            self.0.set_service_status(*name, status).await;
        }
    }
}

/// Serves health on `listener` until `stop`; NOT_SERVING until told otherwise.
pub async fn serve(
    listener: std::net::TcpListener,
    stop: CancellationToken,
) -> anyhow::Result<(Health, tokio::task::JoinHandle<()>)> {
    let (reporter, service) = tonic_health::server::health_reporter();
    let health = Health(reporter);
    health.set(false).await;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let served = tokio::spawn(async move {
        if let Err(e) = Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
            .await
        {
            tracing::warn!(error = %e, "the health port stopped");
        }
    });
    Ok((health, served))
}
