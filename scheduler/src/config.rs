//! The scheduler's settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the scheduler is told at start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the CA, certificates and database live.
    pub data_dir: PathBuf,
    /// Where the gRPC server listens (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The Bitcoin network every tenant of this scheduler is on.
    pub network: String,
    /// Host names (or IP addresses) clients use to reach the scheduler, besides `localhost`;
    /// they go into the server certificate.
    pub hostnames: Vec<String>,
    /// Whether registering needs an invite code.
    pub require_invite: bool,
    /// How many invite codes each new tenant is given to share.
    pub invites_per_tenant: u32,
    /// How long a challenge stays valid.
    pub challenge_ttl: Duration,
    /// At most this many challenges are outstanding at once.
    pub max_outstanding_challenges: usize,
    /// Validity of device certificates, in days.
    pub device_cert_days: u64,
    /// Validity of CAs made on first start and for each tenant, in days.
    pub ca_days: u64,
    /// Validity of the scheduler's server certificate (reissued at every start), in days.
    pub server_cert_days: u64,
    /// How long a stopping scheduler lets open calls finish before closing connections.
    pub shutdown_grace: Duration,
    /// The chain node-hosts follow.
    pub chain: ChainSource,
    /// The node-host binary (by default, next to the scheduler's own).
    pub node_host_bin: PathBuf,
    /// A node-host with no client call and no signer for this long stops itself.
    pub node_idle_timeout: Duration,
    /// How long a node call that needs the signer waits for one.
    pub node_signer_wait: Duration,
}

/// Where the chain comes from.
#[derive(Debug, Clone)]
pub enum ChainSource {
    /// An external bitcoind's JSON-RPC (URL with credentials, or a cookie file).
    Bitcoind {
        /// `http://user:pass@host:port` or `http://host:port`.
        url: String,
    },
    /// The embedded regtest chain, in `<data-dir>/chain`.
    Embedded {
        /// Where its JSON-RPC listens.
        listen: SocketAddr,
        /// Blocks mined to its faucet when new.
        initial_blocks: u32,
    },
}

impl Config {
    /// Defaults for a data directory: regtest, loopback, invite codes required.
    pub fn new(data_dir: PathBuf) -> Self {
        Config {
            data_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 2601)),
            network: "regtest".into(),
            hostnames: vec![],
            require_invite: true,
            invites_per_tenant: 3,
            challenge_ttl: Duration::from_secs(60),
            max_outstanding_challenges: 100_000,
            device_cert_days: 3650,
            ca_days: 36500,
            server_cert_days: 365,
            shutdown_grace: Duration::from_secs(5),
            chain: ChainSource::Embedded {
                listen: SocketAddr::from(([127, 0, 0, 1], 18443)),
                initial_blocks: 101,
            },
            node_host_bin: default_node_host_bin(),
            node_idle_timeout: Duration::from_secs(600),
            node_signer_wait: Duration::from_secs(30),
        }
    }
}

/// `node-host` next to the running executable (where cargo and installs put it).
pub fn default_node_host_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("node-host")))
        .unwrap_or_else(|| PathBuf::from("node-host"))
}
