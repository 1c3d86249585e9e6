//! `scheduler run`'s flags, each with its environment variable and its default, written
//! once here.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use super::{PASSWORD_ENV, file};

/// `run`'s flags alone, for parsing them without the rest of the command line.
#[derive(clap::Parser)]
pub(super) struct RunOnly {
    #[command(flatten)]
    pub(super) run: RunArgs,
}

impl RunArgs {
    /// The settings of a `scheduler run` with no flags (the environment still counts).
    pub fn defaults() -> Self {
        use clap::Parser;
        RunOnly::parse_from(["run"]).run.with_environment()
    }

    /// Fills in what is read from the environment only: the bitcoind RPC password.
    pub fn with_environment(mut self) -> Self {
        self.bitcoind_rpc_password = std::env::var(PASSWORD_ENV).ok();
        self
    }
}

/// `node-host` next to the running executable (where cargo and installs put it).
pub fn default_node_host_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("node-host")))
        .unwrap_or_else(|| PathBuf::from("node-host"))
}

/// The environment variable of the bitcoind RPC URL.
const URL_ENV: &str = "SKYLIGHT_BITCOIND_RPC";

/// `scheduler run`'s settings, as typed (flag, else environment, else the default written
/// here, once).
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// A TOML file of settings, keyed by these flags without the dashes; flags and the
    /// environment win over it (default: `<data-dir>/scheduler.toml`, when it exists).
    #[arg(long, env = file::CONFIG_ENV)]
    pub config: Option<std::path::PathBuf>,
    /// Address to listen on for gRPC (port 0 picks a free port; see `<data-dir>/grpc-uri`).
    #[arg(long, env = "SKYLIGHT_LISTEN", default_value = "127.0.0.1:2601")]
    pub listen: SocketAddr,
    /// Where Prometheus' `/metrics` and a plain `/healthz` are served (HTTP, no TLS: keep
    /// it on loopback or a private network; port 0 picks one, see `<data-dir>/metrics-uri`).
    #[arg(
        long,
        env = "SKYLIGHT_METRICS_LISTEN",
        default_value = "127.0.0.1:2603"
    )]
    pub metrics_listen: SocketAddr,
    /// Bitcoin network of every tenant: bitcoin, testnet, testnet4, signet or regtest.
    #[arg(long, env = "SKYLIGHT_NETWORK", default_value = "regtest")]
    pub network: String,
    /// Host names or addresses clients reach the scheduler by, besides localhost
    /// (comma-separated in the environment).
    #[arg(long = "hostname", env = "SKYLIGHT_HOSTNAMES", value_delimiter = ',')]
    pub hostnames: Vec<String>,
    /// Whether registering needs an invite code.
    #[arg(long, env = "SKYLIGHT_REQUIRE_INVITE", default_value_t = true, action = clap::ArgAction::Set)]
    pub require_invite: bool,
    /// Invite codes given to each new tenant to share. None by default: every code given
    /// away yields a tenant and a node-host, so tenants inviting others is the operator's
    /// choice.
    #[arg(long, env = "SKYLIGHT_INVITES_PER_TENANT", default_value_t = 0)]
    pub invites_per_tenant: u32,
    /// Seconds a challenge stays valid.
    #[arg(long, env = "SKYLIGHT_CHALLENGE_TTL", default_value_t = 60)]
    pub challenge_ttl: u64,
    /// Days a device certificate stays valid.
    #[arg(long, env = "SKYLIGHT_DEVICE_CERT_DAYS", default_value_t = 3650)]
    pub device_cert_days: u64,
    /// Seconds a stopping scheduler lets open calls finish before closing connections.
    #[arg(long, env = "SKYLIGHT_SHUTDOWN_GRACE", default_value_t = 5)]
    pub shutdown_grace: u64,
    /// An external bitcoind's JSON-RPC URL, `http://host:port` (bitcoind's port for the
    /// network if left out). Credentials may be in it (`http://user:password@host:port`),
    /// but then give it in the environment, not as a flag: a command line is readable by
    /// every local user. Without it, on regtest, the scheduler runs its own embedded chain.
    #[arg(long, env = URL_ENV)]
    pub bitcoind_rpc: Option<String>,
    /// bitcoind's cookie file (`<bitcoind datadir>/<network>/.cookie`), read again whenever
    /// bitcoind rewrites it.
    #[arg(long, env = "SKYLIGHT_BITCOIND_RPC_COOKIE")]
    pub bitcoind_rpc_cookie: Option<PathBuf>,
    /// bitcoind's `rpcuser` (or a user of its `rpcauth`); the password is read from
    /// SKYLIGHT_BITCOIND_RPC_PASSWORD or --bitcoind-rpc-password-file.
    #[arg(long, env = "SKYLIGHT_BITCOIND_RPC_USER")]
    pub bitcoind_rpc_user: Option<String>,
    /// A file holding the bitcoind RPC user's password (one line).
    #[arg(long, env = "SKYLIGHT_BITCOIND_RPC_PASSWORD_FILE")]
    pub bitcoind_rpc_password_file: Option<PathBuf>,
    /// The bitcoind RPC password, from SKYLIGHT_BITCOIND_RPC_PASSWORD only.
    #[arg(skip)]
    pub bitcoind_rpc_password: Option<String>,
    /// Whether `bitcoind_rpc` was given as a flag (from the layers' sources: see
    /// [`file::Layered::source`]).
    #[arg(skip)]
    pub bitcoind_rpc_from_command_line: bool,
    /// Where the embedded chain's JSON-RPC listens.
    #[arg(
        long,
        env = "SKYLIGHT_CHAIN_RPC_LISTEN",
        default_value = "127.0.0.1:18443"
    )]
    pub chain_rpc_listen: SocketAddr,
    /// Blocks the embedded chain mines to its faucet when new (101 makes one coinbase
    /// spendable).
    #[arg(long, env = "SKYLIGHT_CHAIN_INITIAL_BLOCKS", default_value_t = 101)]
    pub chain_initial_blocks: u32,
    /// The node-host binary (default: next to this scheduler).
    #[arg(long, env = "SKYLIGHT_NODE_HOST_BIN")]
    pub node_host_bin: Option<PathBuf>,
    /// Seconds with no client call and no signer after which a node-host stops (default:
    /// node-host's).
    #[arg(long, env = "SKYLIGHT_NODE_IDLE_TIMEOUT")]
    pub node_idle_timeout: Option<u64>,
    /// Seconds a node call that needs the tenant's signer (an invoice, say) waits for the
    /// signer to attach before it fails (default: node-host's).
    #[arg(long, env = "SKYLIGHT_NODE_SIGNER_WAIT")]
    pub node_signer_wait: Option<u64>,
    /// Seconds a signing request waits for the signer's answer (default: node-host's).
    #[arg(long, env = "SKYLIGHT_NODE_SIGNER_DEADLINE")]
    pub node_signer_deadline: Option<u64>,
    /// Milliseconds between a node-host's polls of the chain for a new tip (default:
    /// node-host's).
    #[arg(long, env = "SKYLIGHT_NODE_CHAIN_POLL_MS")]
    pub node_chain_poll_ms: Option<u64>,
    /// Signed client requests further than this many seconds from the node's clock are
    /// refused (default: node-host's).
    #[arg(long, env = "SKYLIGHT_NODE_SIGNED_REQUEST_WINDOW")]
    pub node_signed_request_window: Option<u64>,
    /// Milliseconds a node's signing request may wait with no signer attached before the
    /// node raises a `signer_needed` webhook event (default: node-host's).
    #[arg(long, env = "SKYLIGHT_NODE_SIGNER_NEEDED_AFTER_MS")]
    pub node_signer_needed_after_ms: Option<u64>,
    /// Blocks a node may lag the chain's tip before it raises a `node_stuck` webhook event
    /// (default: node-host's).
    #[arg(long, env = "SKYLIGHT_NODE_STUCK_AFTER_BLOCKS")]
    pub node_stuck_after_blocks: Option<u64>,
    /// Whether node-hosts give up all file access but their own node directory
    /// (Landlock): best-effort (where the kernel has it), required (a node-host that cannot
    /// does not start) or off (default: node-host's, best-effort).
    #[arg(long, env = "SKYLIGHT_NODE_ISOLATION", value_enum)]
    pub node_isolation: Option<skylight_node_host::isolation::Isolation>,
    /// Where node-hosts run: local (processes on this machine) or kubernetes (a Pod each,
    /// in the cluster the scheduler runs in or its kubeconfig names; needs
    /// --node-state-database-url-file and --kube-node-image; see docs/kubernetes.md).
    #[arg(
        long,
        env = "SKYLIGHT_NODE_LAUNCHER",
        value_enum,
        default_value = "local"
    )]
    pub node_launcher: crate::config::LauncherKind,
    /// The namespace node-host Pods and their Secrets are made in (kubernetes).
    #[arg(long, env = "SKYLIGHT_KUBE_NAMESPACE", default_value = "skylight")]
    pub kube_namespace: String,
    /// The node-host image Pods run (kubernetes).
    #[arg(long, env = "SKYLIGHT_KUBE_NODE_IMAGE")]
    pub kube_node_image: Option<String>,
    /// The port node-hosts' gRPC listens on in their Pods, as clients are given it
    /// (kubernetes).
    #[arg(long, env = "SKYLIGHT_KUBE_NODE_GRPC_PORT", default_value_t = 19737)]
    pub kube_node_grpc_port: u16,
    /// The port of node-hosts' plaintext health service in their Pods, which their
    /// readiness probe asks (kubernetes).
    #[arg(long, env = "SKYLIGHT_KUBE_NODE_HEALTH_PORT", default_value_t = 19738)]
    pub kube_node_health_port: u16,
    /// Keep the scheduler's own state (tenants, CAs, devices, invite codes, webhooks) in
    /// PostgreSQL rather than `scheduler.redb`: a file holding the database's URL (never on
    /// a command line, it holds a password). Replicas on one database share that state and
    /// the CA.
    #[arg(long, env = "SKYLIGHT_STATE_DATABASE_URL_FILE")]
    pub state_database_url_file: Option<PathBuf>,
    /// Keep tenants' node state in PostgreSQL rather than in their node directories: a file
    /// holding the database's URL (postgres://user:password@host:5432/dbname; never on a
    /// command line, it holds a password). Each node-host takes its tenant's lease there,
    /// and every write it makes is fenced by it.
    #[arg(long, env = "SKYLIGHT_NODE_STATE_DATABASE_URL_FILE")]
    pub node_state_database_url_file: Option<PathBuf>,
    /// Seconds a tenant's lease lasts without a renewal, with node state in PostgreSQL:
    /// how long a crashed node-host keeps its successor waiting (default: node-host's).
    #[arg(long, env = "SKYLIGHT_NODE_LEASE_TTL")]
    pub node_lease_ttl: Option<u64>,
    /// The address node-hosts listen on for Lightning peers (0.0.0.0: every interface).
    #[arg(long, env = "SKYLIGHT_NODE_P2P_BIND", default_value = "127.0.0.1")]
    pub node_p2p_bind: IpAddr,
    /// The Lightning ports tenants are given, one each, kept across restarts
    /// (`start-end`, e.g. 9735-9835; open them in the firewall). Without it, each
    /// node-host picks a free port once and keeps it.
    #[arg(long, env = "SKYLIGHT_NODE_P2P_PORTS")]
    pub node_p2p_ports: Option<String>,
    /// The host name or address peers are told to reach tenants' nodes at (Getinfo's
    /// `address`, with each node's port): the operator's public host.
    #[arg(long, env = "SKYLIGHT_NODE_P2P_ANNOUNCE", value_parser = skylight_node_host::config::announce_host)]
    pub node_p2p_announce: Option<String>,
    /// Outgoing webhooks.
    #[command(flatten)]
    pub webhooks: crate::webhooks::settings::WebhookArgs,
    /// Limits.
    #[command(flatten)]
    pub limits: crate::limits::LimitArgs,
    /// Where node exports are downloaded from (HTTPS with the scheduler's certificate; the
    /// URL ExportNode returns is the only key to a file). Keep it fixed: a URL names it.
    #[arg(long, env = "SKYLIGHT_EXPORT_LISTEN", default_value = "127.0.0.1:2602")]
    pub export_listen: SocketAddr,
    /// The `https://host:port` export URLs are given with (default: localhost and the
    /// port of --export-listen); a host name must be one of --hostname's.
    #[arg(long, env = "SKYLIGHT_EXPORT_PUBLIC_URL")]
    pub export_public_url: Option<String>,
    /// Days an export's file is kept once made; the node never runs here again after.
    #[arg(long, env = "SKYLIGHT_EXPORT_KEEP_DAYS", default_value_t = 30)]
    pub export_keep_days: u64,
}
