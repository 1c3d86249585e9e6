//! `node-host standalone`: an exported node run by its owner, on their own machine, outside
//! any scheduler.
//!
//! The first run imports the export `signer-cli export` unpacked ([`import`]); every run
//! then issues the node a fresh server certificate from the tenant CA in its identity, with
//! the users CA in its chain, so the devices' certificates and the operator's root they
//! trust work unchanged; and runs the node as the scheduler would, except that it never
//! stops for being idle and its events stay in its outbox.

pub mod import;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use skylight_certs::{Authority, Validity};
use skylight_client::export::identity::ExportIdentity;
use skylight_client::files;

use crate::config::{Config, LogFormat, announce_host};
use crate::paths::NodeDir;

/// How long the node's server certificate is valid: it is issued again at every start.
const SERVER_CERT_DAYS: u64 = 365;

/// `node-host standalone`'s command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "node-host standalone",
    version,
    about = "Run an exported node on this machine, outside any scheduler (import it once with --from-export)"
)]
pub struct Standalone {
    /// Import the node from this directory, which `signer-cli export` unpacked, into
    /// --data-dir (once: the same export is never imported twice).
    #[arg(long)]
    pub from_export: Option<PathBuf>,
    /// The node's directory, where it runs from.
    #[arg(long, default_value_os_t = home().join("node"))]
    pub data_dir: PathBuf,
    /// Where this user's imports are recorded (one file per export imported).
    #[arg(long, default_value_os_t = home().join("imports"))]
    pub imports: PathBuf,
    /// The chain's bitcoind JSON-RPC URL.
    #[arg(long)]
    pub bitcoind_rpc: String,
    /// A cookie file with the RPC credentials (`user:password`).
    #[arg(long)]
    pub bitcoind_cookie: Option<PathBuf>,
    /// Address for the node's gRPC, where its signer and its devices connect (port 0 picks
    /// one; written to `<data-dir>/grpc-uri`).
    #[arg(long, default_value = "127.0.0.1:2610")]
    pub listen: SocketAddr,
    /// Address where Lightning peers connect (port 0: the one the node had before).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub p2p_listen: SocketAddr,
    /// The host name or address peers are told to reach the node at.
    #[arg(long, value_parser = announce_host)]
    pub p2p_announce: Option<String>,
    /// Seconds a signing request waits for the signer's answer.
    #[arg(long = "signer-deadline", default_value = "120")]
    pub signer_deadline: u64,
    /// How log lines are written: `human` or `json`.
    #[arg(long = "log-format", value_enum, default_value = "human")]
    pub log_format: LogFormat,
}

/// `~/.skylight/standalone`.
fn home() -> PathBuf {
    files::skylight_home("standalone")
}

/// Imports the export if asked, prepares the node directory for this run and returns the
/// node's settings.
pub fn prepare(args: &Standalone) -> Result<Config> {
    let dir = NodeDir::new(&args.data_dir);
    if let Some(from) = &args.from_export {
        let record = import::import(from, dir.root(), &args.imports)?;
        tracing::info!(node_id = %record.node_id, from = %record.from.display(), into = %record.into.display(), "export imported");
    }
    let record = import::recorded(&dir)?;
    let identity = read_identity(&dir)?;
    if identity.node_id != record.node_id {
        bail!(
            "{} names node {} but {} node {}: the directory is damaged",
            dir.identity().display(),
            identity.node_id,
            dir.imported().display(),
            record.node_id
        );
    }
    write_server_certificate(&dir, &identity)?;
    let node_id = identity
        .node_id
        .parse()
        .with_context(|| format!("{}: a bad node id", dir.identity().display()))?;
    let mut config = Config::new(node_id, dir.root().to_path_buf(), args.bitcoind_rpc.clone());
    config.network = identity
        .network
        .parse()
        .with_context(|| format!("{}: a bad network", dir.identity().display()))?;
    config.bitcoind_cookie = args.bitcoind_cookie.clone();
    config.listen = args.listen;
    config.p2p_listen = args.p2p_listen;
    config.p2p_announce = args.p2p_announce.clone();
    config.signer_deadline = Duration::from_secs(args.signer_deadline);
    // Its owner's machine, its owner's node: it runs until they stop it.
    config.idle_timeout = Duration::ZERO;
    config.events_socket = None;
    config.log_format = args.log_format;
    Ok(config)
}

fn read_identity(dir: &NodeDir) -> Result<ExportIdentity> {
    let path = dir.identity();
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is damaged", path.display()))
}

/// The node's server certificate (`localhost`) from its tenant CA, chained up to the users
/// CA as the scheduler's are; the tenant CA as the only client trust anchor.
fn write_server_certificate(dir: &NodeDir, identity: &ExportIdentity) -> Result<()> {
    let tenant = Authority::load(&identity.tenant_ca_cert_pem, &identity.tenant_ca_key_pem)
        .context("the tenant CA in the node's identity")?;
    let server = tenant.issue_node_server(&identity.node_id, Validity::days(SERVER_CERT_DAYS))?;
    let chain = format!(
        "{}{}{}",
        server.cert_pem, identity.tenant_ca_cert_pem, identity.users_ca_cert_pem
    );
    files::replace_private(&dir.server_cert(), chain.as_bytes())?;
    files::replace_private(&dir.server_key(), server.key_pem.as_bytes())?;
    files::replace_private(&dir.tenant_ca(), identity.tenant_ca_cert_pem.as_bytes())?;
    // Not this run's address until it listens.
    let _ = std::fs::remove_file(dir.grpc_uri());
    Ok(())
}
