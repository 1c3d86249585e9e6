//! The scheduler's settings: flags, their environment variables, the configuration file
//! ([`file`]) and the defaults, in that order of precedence.

pub mod file;
pub mod show;

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use skylight_client::chain::{ChainRpc, RpcAuth};

/// The environment variable the bitcoind RPC password is read from (never a flag: a
/// command line is readable by every local user).
pub const PASSWORD_ENV: &str = "SKYLIGHT_BITCOIND_RPC_PASSWORD";

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
    /// What every node-host is started with, where the operator set it.
    pub node_host: NodeHostSettings,
    /// Where node-hosts listen for Lightning peers and what they announce.
    pub p2p: P2pSettings,
    /// Which webhook targets are allowed, and how deliveries are retried.
    pub webhooks: crate::webhooks::settings::WebhookSettings,
    /// Where node exports are served, and how long they are kept.
    pub exports: ExportSettings,
    /// Where `/metrics` and `/healthz` are served (plain HTTP).
    pub metrics_listen: SocketAddr,
    /// What one caller, and all of them, may ask of the scheduler.
    pub limits: crate::limits::LimitSettings,
}

/// The export download server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSettings {
    /// Where it listens (HTTPS, the scheduler's certificate).
    pub listen: SocketAddr,
    /// The `https://host:port` export URLs start with; by default `https://localhost:<port>`.
    pub public_url: Option<String>,
    /// How long an export's file is kept after it is made.
    pub keep: Duration,
}

/// Where node-hosts listen for Lightning peers, and the address they tell peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P2pSettings {
    /// The address node-hosts listen on (`0.0.0.0` for every interface).
    pub bind: IpAddr,
    /// The ports tenants are given, one each and kept; without it, each node-host picks a
    /// free port once and keeps it.
    pub ports: Option<RangeInclusive<u16>>,
    /// The host name or address announced in Getinfo's `address` (the operator's public
    /// host), with each node's port.
    pub announce: Option<String>,
}

/// Settings of every node-host the operator chose; the rest keep node-host's own defaults
/// (`skylight_node_host::config::Config`, where each is written once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeHostSettings {
    /// A node-host with no client call and no signer for this long stops itself.
    pub idle_timeout: Option<Duration>,
    /// How long a node call that needs the signer waits for one.
    pub signer_wait: Option<Duration>,
    /// How long a signing request waits for the signer's answer.
    pub signer_deadline: Option<Duration>,
    /// How often a node-host polls the chain for a new tip.
    pub chain_poll: Option<Duration>,
    /// How far a signed client request's timestamp may be from the node's clock.
    pub signed_request_window: Option<Duration>,
    /// How long a signing request waits with no signer before `signer_needed` is raised.
    pub signer_needed_after: Option<Duration>,
    /// How many blocks behind the chain's tip a node may be before `node_stuck` is raised.
    pub stuck_after_blocks: Option<u64>,
    /// How node-hosts write their log lines (the scheduler's own format).
    pub log_format: Option<skylight_node_host::config::LogFormat>,
    /// Which log lines node-hosts write (`RUST_LOG`'s syntax; the scheduler's own level).
    pub log_filter: Option<String>,
    /// How strictly node-hosts confine themselves to their node directory.
    pub isolation: Option<skylight_node_host::isolation::Isolation>,
}

impl NodeHostSettings {
    /// Sets what the operator chose on `config`.
    pub fn apply(&self, config: &mut skylight_node_host::config::Config) {
        let set = |target: &mut Duration, chosen: Option<Duration>| {
            if let Some(d) = chosen {
                *target = d;
            }
        };
        set(&mut config.idle_timeout, self.idle_timeout);
        set(&mut config.signer_wait, self.signer_wait);
        set(&mut config.signer_deadline, self.signer_deadline);
        set(&mut config.chain_poll, self.chain_poll);
        set(
            &mut config.signed_request_window,
            self.signed_request_window,
        );
        set(&mut config.signer_needed_after, self.signer_needed_after);
        if let Some(blocks) = self.stuck_after_blocks {
            config.stuck_after_blocks = blocks;
        }
        if let Some(format) = self.log_format {
            config.log_format = format;
        }
        if let Some(isolation) = self.isolation {
            config.isolation = isolation;
        }
    }
}

/// Where the chain comes from.
#[derive(Debug, Clone)]
pub enum ChainSource {
    /// An external bitcoind's JSON-RPC.
    Bitcoind {
        /// Where it is and how to authenticate (the password never displayed).
        rpc: ChainRpc,
        /// Whether the operator put a password on the scheduler's command line, where any
        /// local user can read it: said at start, so it can be moved.
        password_on_command_line: bool,
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
    /// The settings `scheduler run` was given for `data_dir`: each flag, else its
    /// environment variable, else its default (written once, on [`RunArgs`]).
    pub fn from_args(data_dir: PathBuf, args: RunArgs) -> Result<Self, ConfigError> {
        let Ok(network) = args.network.parse::<bitcoin::Network>() else {
            return Err(ConfigError(format!(
                "unknown network {:?}: use bitcoin, testnet, testnet4, signet or regtest",
                args.network
            )));
        };
        let password = match (
            &args.bitcoind_rpc_password_file,
            &args.bitcoind_rpc_password,
        ) {
            (Some(_), Some(_)) => {
                return Err(ConfigError(format!(
                    "the bitcoind RPC password is given both in {PASSWORD_ENV} and in \
                     --bitcoind-rpc-password-file; keep one"
                )));
            }
            (Some(file), None) => Some(
                std::fs::read_to_string(file)
                    .map_err(|e| ConfigError(format!("cannot read {}: {e}", file.display())))?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
            ),
            (None, password) => password.clone(),
        };
        let chain = match args.bitcoind_rpc {
            Some(url) => {
                let rpc = ChainRpc::from_settings(
                    &url,
                    network,
                    args.bitcoind_rpc_cookie,
                    args.bitcoind_rpc_user,
                    password,
                )
                .map_err(|e| ConfigError(e.to_string()))?;
                let password_on_command_line = matches!(rpc.auth, RpcAuth::UserPassword { .. })
                    && args.bitcoind_rpc_from_command_line;
                ChainSource::Bitcoind {
                    rpc,
                    password_on_command_line,
                }
            }
            None if args.bitcoind_rpc_cookie.is_some()
                || args.bitcoind_rpc_user.is_some()
                || password.is_some() =>
            {
                return Err(ConfigError(
                    "bitcoind RPC credentials are given without --bitcoind-rpc (its URL)".into(),
                ));
            }
            None if args.network == "regtest" => ChainSource::Embedded {
                listen: args.chain_rpc_listen,
                initial_blocks: args.chain_initial_blocks,
            },
            None => {
                return Err(ConfigError(format!(
                    "--bitcoind-rpc is required on {}: the embedded chain is regtest only",
                    args.network
                )));
            }
        };
        let webhooks = crate::webhooks::settings::WebhookSettings::from_args(&args.webhooks)
            .map_err(ConfigError)?;
        let public_url = match args.export_public_url {
            Some(u) => {
                let parsed = url::Url::parse(&u)
                    .map_err(|e| ConfigError(format!("--export-public-url {u:?}: {e}")))?;
                if parsed.scheme() != "https" || parsed.host().is_none() || parsed.path() != "/" {
                    return Err(ConfigError(format!(
                        "--export-public-url {u:?}: give https://host[:port], nothing after it"
                    )));
                }
                Some(u.trim_end_matches('/').to_string())
            }
            None => None,
        };
        if args.export_keep_days == 0 {
            return Err(ConfigError(
                "--export-keep-days 0 would delete an export before it could be downloaded; give at least 1".into(),
            ));
        }
        Ok(Config {
            webhooks,
            exports: ExportSettings {
                listen: args.export_listen,
                public_url,
                keep: Duration::from_secs(args.export_keep_days * 86_400),
            },
            data_dir,
            limits: crate::limits::LimitSettings::from_args(&args.limits).map_err(ConfigError)?,
            metrics_listen: args.metrics_listen,
            listen: args.listen,
            network: args.network,
            hostnames: args.hostnames,
            require_invite: args.require_invite,
            invites_per_tenant: args.invites_per_tenant,
            challenge_ttl: Duration::from_secs(args.challenge_ttl),
            max_outstanding_challenges: 100_000,
            device_cert_days: args.device_cert_days,
            ca_days: 36500,
            server_cert_days: 365,
            shutdown_grace: Duration::from_secs(args.shutdown_grace),
            chain,
            node_host_bin: args.node_host_bin.unwrap_or_else(default_node_host_bin),
            p2p: P2pSettings {
                bind: args.node_p2p_bind,
                ports: args.node_p2p_ports.as_deref().map(port_range).transpose()?,
                announce: args.node_p2p_announce,
            },
            node_host: NodeHostSettings {
                idle_timeout: args.node_idle_timeout.map(Duration::from_secs),
                signer_wait: args.node_signer_wait.map(Duration::from_secs),
                signer_deadline: args.node_signer_deadline.map(Duration::from_secs),
                chain_poll: args.node_chain_poll_ms.map(Duration::from_millis),
                signed_request_window: args.node_signed_request_window.map(Duration::from_secs),
                signer_needed_after: args.node_signer_needed_after_ms.map(Duration::from_millis),
                stuck_after_blocks: args.node_stuck_after_blocks,
                log_format: None,
                log_filter: None,
                isolation: args.node_isolation,
            },
        })
    }

    /// The defaults for `data_dir` (regtest, loopback, invite codes required), as
    /// `scheduler run` with no flags has them.
    pub fn new(data_dir: PathBuf) -> Self {
        Self::from_args(data_dir, RunArgs::defaults()).expect("the defaults are valid")
    }
}

/// `start-end`, both ports, start no greater than end.
fn port_range(text: &str) -> Result<RangeInclusive<u16>, ConfigError> {
    let bad = || {
        ConfigError(format!(
            "--node-p2p-ports {text:?}: write it as start-end, e.g. 9735-9835"
        ))
    };
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let (a, b): (u16, u16) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok(a..=b)
}

/// Settings that cannot work together, said so a person can fix them.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

#[derive(clap::Parser)]
struct RunOnly {
    #[command(flatten)]
    run: RunArgs,
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parsed(flags: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["run"];
        argv.extend_from_slice(flags);
        Config::from_args("/d".into(), RunOnly::parse_from(argv).run)
    }

    #[test]
    fn no_flags_give_the_documented_defaults() {
        let c = parsed(&[]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:2601".parse().unwrap());
        assert_eq!(c.network, "regtest");
        assert!(c.require_invite);
        assert_eq!(c.invites_per_tenant, 0);
        assert_eq!(c.challenge_ttl, Duration::from_secs(60));
        assert_eq!(c.device_cert_days, 3650);
        assert_eq!(c.shutdown_grace, Duration::from_secs(5));
        assert_eq!(c.node_host, NodeHostSettings::default());
        match c.chain {
            ChainSource::Embedded {
                listen,
                initial_blocks,
            } => {
                assert_eq!(listen, "127.0.0.1:18443".parse().unwrap());
                assert_eq!(initial_blocks, 101);
            }
            other => panic!("expected the embedded chain, got {other:?}"),
        }
        assert_eq!(Config::new("/d".into()).listen, c.listen);
    }

    #[test]
    fn node_host_settings_left_out_keep_node_hosts_defaults() {
        let c = parsed(&["--node-idle-timeout", "5", "--node-chain-poll-ms", "50"]).unwrap();
        let node: bitcoin::secp256k1::PublicKey =
            "02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f283686619"
                .parse()
                .unwrap();
        let defaults =
            skylight_node_host::config::Config::new(node, "/n".into(), "http://c:1".into());
        let mut config = defaults.clone();
        c.node_host.apply(&mut config);
        assert_eq!(config.idle_timeout, Duration::from_secs(5));
        assert_eq!(config.chain_poll, Duration::from_millis(50));
        assert_eq!(config.signer_wait, defaults.signer_wait);
        assert_eq!(config.signer_deadline, defaults.signer_deadline);
        assert_eq!(config.signed_request_window, defaults.signed_request_window);
    }

    #[test]
    fn a_public_network_needs_a_bitcoind_and_gets_the_one_given() {
        let err = parsed(&["--network", "signet"]).unwrap_err().to_string();
        assert!(
            err.contains("--bitcoind-rpc is required on signet"),
            "{err}"
        );
        let c = parsed(&["--network", "signet", "--bitcoind-rpc", "http://h"]).unwrap();
        match c.chain {
            ChainSource::Bitcoind { rpc, .. } => {
                assert_eq!(rpc.url().as_str(), "http://h:38332/");
                assert_eq!(rpc.auth, RpcAuth::None);
            }
            other => panic!("expected bitcoind, got {other:?}"),
        }
    }

    #[test]
    fn lightning_ports_are_a_range_and_the_announced_host_is_checked() {
        let c = parsed(&[]).unwrap();
        assert_eq!(c.p2p.bind, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!((c.p2p.ports, c.p2p.announce), (None, None));
        let c = parsed(&[
            "--node-p2p-bind",
            "0.0.0.0",
            "--node-p2p-ports",
            "9735-9835",
            "--node-p2p-announce",
            "ln.example.org",
        ])
        .unwrap();
        assert_eq!(c.p2p.ports, Some(9735..=9835));
        assert_eq!(c.p2p.announce.as_deref(), Some("ln.example.org"));
        for bad in ["9835-9735", "0-10", "9735", "a-b"] {
            let err = parsed(&["--node-p2p-ports", bad]).unwrap_err().to_string();
            assert!(err.contains("start-end"), "{bad}: {err}");
        }
    }

    #[test]
    fn bitcoind_credentials_come_one_way_and_never_from_a_flag_unnoticed() {
        let c = parsed(&["--bitcoind-rpc", "http://u:pw@h:1"]).unwrap();
        assert!(matches!(
            c.chain,
            ChainSource::Bitcoind { rpc, password_on_command_line: false }
                if rpc.auth == RpcAuth::UserPassword { user: "u".into(), password: "pw".into() }
        ));
        let mut args = RunOnly::parse_from(["run", "--bitcoind-rpc", "http://u:pw@h:1"]).run;
        args.bitcoind_rpc_from_command_line = true;
        let c = Config::from_args("/d".into(), args).unwrap();
        assert!(matches!(
            c.chain,
            ChainSource::Bitcoind {
                password_on_command_line: true,
                ..
            }
        ));
        let err = parsed(&["--bitcoind-rpc-cookie", "/c"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("without --bitcoind-rpc"), "{err}");
        let mut args = RunOnly::parse_from([
            "run",
            "--bitcoind-rpc",
            "http://h:1",
            "--bitcoind-rpc-user",
            "u",
        ])
        .run;
        args.bitcoind_rpc_password = Some("pw".into());
        let c = Config::from_args("/d".into(), args).unwrap();
        assert!(matches!(
            c.chain,
            ChainSource::Bitcoind { rpc, .. }
                if rpc.auth == RpcAuth::UserPassword { user: "u".into(), password: "pw".into() }
        ));
    }

    #[test]
    fn an_unknown_network_is_refused_with_the_known_ones() {
        let err = parsed(&["--network", "mainnet"]).unwrap_err().to_string();
        assert!(err.contains("use bitcoin, testnet"), "{err}");
    }
}
