//! The node server: gRPC over mutual TLS, trusting only the tenant's CA, so no other
//! tenant's device (and not the nobody identity) can even complete a handshake.

pub mod caller;
pub mod health;
pub mod revoked;
pub mod signed_requests;
pub mod signed_service;

use skylight_proto::greenlight::node_server::NodeServer;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::activity::Activity;
use crate::api::NodeApi;
use crate::server::signed_requests::Verifier;
use crate::server::signed_service::SignedService;
use skylight_proto::cln::node_server::NodeServer as ClnNodeServer;
use std::sync::Arc;

/// What the node server presents and trusts.
pub struct ServerTls {
    /// The node's server certificate chain (leaf, tenant CA), PEM.
    pub cert_chain_pem: String,
    /// Its key, PEM.
    pub key_pem: String,
    /// The tenant's CA, PEM: the only client trust anchor.
    pub tenant_ca_pem: String,
}

/// The largest message either way (signer state grows with channels and payments).
pub const MAX_MESSAGE: usize = 32 * 1024 * 1024;

/// Serves `api` on `listener` until `shutdown` resolves; every call counts as
/// activity, and every call but the signer's plumbing must be signed (see
/// [`crate::server::signed_requests`]).
pub async fn serve(
    listener: TcpListener,
    tls: ServerTls,
    api: NodeApi,
    activity: Arc<Activity>,
    verifier: Arc<Verifier>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = ServerTlsConfig::new()
        .identity(Identity::from_pem(&tls.cert_chain_pem, &tls.key_pem))
        .client_ca_root(Certificate::from_pem(&tls.tenant_ca_pem))
        .timeout(std::time::Duration::from_secs(10));
    let touch = {
        let activity = activity.clone();
        move |req: tonic::Request<()>| {
            activity.touch();
            Ok(req)
        }
    };
    // Signing requests and answers are small messages on long-lived streams: without
    // TCP_NODELAY, Nagle's algorithm and delayed ACKs add tens of milliseconds to each.
    let incoming = TcpListenerStream::new(listener).map(|conn| {
        conn.inspect(|stream| {
            let _ = stream.set_nodelay(true);
        })
    });
    // Health and reflection: for the tenant's devices (the only ones TLS lets in), never
    // signed, and never activity (a probe must not keep an idle node running).
    let (_health_reporter, health, reflection) = skylight_proto::conventions::for_services(&[
        <NodeServer<NodeApi> as tonic::server::NamedService>::NAME,
        <ClnNodeServer<NodeApi> as tonic::server::NamedService>::NAME,
    ])
    .await;
    Server::builder()
        // A signer on a connection that died must stop counting as attached.
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
        .tls_config(config)?
        .add_service(SignedService::new(
            InterceptedService::new(
                NodeServer::new(api.clone())
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE),
                touch.clone(),
            ),
            verifier.clone(),
        ))
        .add_service(SignedService::new(
            InterceptedService::new(ClnNodeServer::new(api), touch),
            verifier,
        ))
        .add_service(health)
        .add_service(reflection)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
