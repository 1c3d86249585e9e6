//! Connections to the scheduler over mutual TLS.

use anyhow::{Context, Result};
use skylight_proto::scheduler::scheduler_client::SchedulerClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// What a connection presents and trusts.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The CA that signed the scheduler's certificate (the operator's `ca.pem`).
    pub ca_pem: Vec<u8>,
    /// Our certificate chain, PEM.
    pub cert_pem: Vec<u8>,
    /// Our key, PEM. Secret.
    pub key_pem: Vec<u8>,
}

/// Opens a channel to `uri` (`https://host:port`) presenting `identity`.
pub async fn channel(uri: &str, identity: &TlsIdentity) -> Result<Channel> {
    // rustls needs a process-wide crypto provider; ring is the only one we build.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let parsed: tonic::transport::Uri = uri
        .parse()
        .with_context(|| format!("{uri:?} is not a URI like https://localhost:2601"))?;
    let host = parsed
        .host()
        .with_context(|| format!("{uri:?} names no host"))?
        .trim_matches(|c| c == '[' || c == ']')
        .to_string();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&identity.ca_pem))
        .identity(Identity::from_pem(&identity.cert_pem, &identity.key_pem))
        .domain_name(host);
    let channel = Channel::from_shared(uri.to_string())?
        .tls_config(tls)?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("cannot connect to {uri}"))?;
    Ok(channel)
}

/// A scheduler client over `channel`.
pub async fn scheduler(uri: &str, identity: &TlsIdentity) -> Result<SchedulerClient<Channel>> {
    Ok(SchedulerClient::new(channel(uri, identity).await?))
}

/// The scheduler (or node) refused a call. Displays as a person reads it
/// (`Register refused (AlreadyExists): node … is already registered`) and keeps the status
/// for callers that act on its code.
#[derive(Debug)]
pub struct Refused {
    /// The RPC.
    pub rpc: &'static str,
    /// What the server said.
    pub status: tonic::Status,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} refused ({:?}): {}",
            self.rpc,
            self.status.code(),
            self.status.message()
        )
    }
}

impl std::error::Error for Refused {}
