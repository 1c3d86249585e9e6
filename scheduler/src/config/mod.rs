//! The scheduler's settings: flags, their environment variables, the configuration file
//! ([`mod@file`]) and the defaults, in that order of precedence.

mod args;
pub mod file;
pub mod show;

pub use args::{RunArgs, default_node_host_bin};

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
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
    /// The file holding the URL of the database that keeps the scheduler's own state, if
    /// not `scheduler.redb`.
    pub state_database_url_file: Option<PathBuf>,
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
    /// Where node-hosts run: here, or as Pods in a cluster.
    pub launcher: LauncherSettings,
}

/// Which launcher starts node-hosts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LauncherKind {
    /// Processes on this machine.
    #[default]
    Local,
    /// A Pod each, in a Kubernetes cluster.
    Kubernetes,
}

/// Where node-hosts run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LauncherSettings {
    /// Processes on this machine, each in its node directory.
    Local,
    /// A Pod each.
    Kubernetes {
        /// Their namespace.
        namespace: String,
        /// Their image.
        image: String,
        /// Their gRPC port.
        grpc_port: u16,
        /// Their health port.
        health_port: u16,
    },
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
    /// The file holding the URL of the database that keeps node state, if not the node
    /// directories.
    pub state_database_url_file: Option<PathBuf>,
    /// How long a tenant's lease lasts without a renewal.
    pub lease_ttl: Option<Duration>,
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
        set(&mut config.lease_ttl, self.lease_ttl);
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
        let has_node_database = args.node_state_database_url_file.is_some();
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
                state_database_url_file: args
                    .node_state_database_url_file
                    .map(|f| {
                        check_database_url_file("--node-state-database-url-file", &f).map(|()| f)
                    })
                    .transpose()?,
                lease_ttl: args.node_lease_ttl.map(Duration::from_secs),
            },
            state_database_url_file: args
                .state_database_url_file
                .map(|f| check_database_url_file("--state-database-url-file", &f).map(|()| f))
                .transpose()?,
            launcher: match args.node_launcher {
                LauncherKind::Local => LauncherSettings::Local,
                LauncherKind::Kubernetes => {
                    if !has_node_database {
                        return Err(ConfigError(
                            "--node-launcher kubernetes needs --node-state-database-url-file: a \
                             Pod keeps no state of its own"
                                .into(),
                        ));
                    }
                    let Some(image) = args.kube_node_image else {
                        return Err(ConfigError(
                            "--node-launcher kubernetes needs --kube-node-image (the node-host \
                             image its Pods run)"
                                .into(),
                        ));
                    };
                    LauncherSettings::Kubernetes {
                        namespace: args.kube_namespace,
                        image,
                        grpc_port: args.kube_node_grpc_port,
                        health_port: args.kube_node_health_port,
                    }
                }
            },
        })
    }

    /// The defaults for `data_dir` (regtest, loopback, invite codes required), as
    /// `scheduler run` with no flags has them.
    pub fn new(data_dir: PathBuf) -> Self {
        Self::from_args(data_dir, RunArgs::defaults()).expect("the defaults are valid")
    }
}

/// A database URL file that can be read and holds a URL PostgreSQL takes, checked once at
/// start so a mistake is the operator's error, not every node's.
fn check_database_url_file(flag: &str, file: &Path) -> Result<(), ConfigError> {
    let url = std::fs::read_to_string(file)
        .map_err(|e| ConfigError(format!("{flag} {}: {e}", file.display())))?;
    skylight_postgres::parse(&url)
        .map_err(|e| ConfigError(format!("{flag} {}: {e}", file.display())))?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::args::RunOnly;

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
    fn the_kubernetes_launcher_needs_node_state_in_postgresql_and_an_image() {
        assert_eq!(parsed(&[]).unwrap().launcher, LauncherSettings::Local);
        let err = parsed(&["--node-launcher", "kubernetes"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--node-state-database-url-file"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("url");
        std::fs::write(&url, "postgres://u:p@db:5432/skylight").unwrap();
        let url = url.to_str().unwrap();
        let with_db = [
            "--node-launcher",
            "kubernetes",
            "--node-state-database-url-file",
            url,
        ];
        let err = parsed(&with_db).unwrap_err().to_string();
        assert!(err.contains("--kube-node-image"), "{err}");
        let mut all = with_db.to_vec();
        all.extend(["--kube-node-image", "registry.example/node-host:1"]);
        assert_eq!(
            parsed(&all).unwrap().launcher,
            LauncherSettings::Kubernetes {
                namespace: "skylight".into(),
                image: "registry.example/node-host:1".into(),
                grpc_port: 19737,
                health_port: 19738,
            }
        );
    }

    #[test]
    fn a_database_url_file_that_is_not_a_url_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("url");
        std::fs::write(&url, "not a url at all").unwrap();
        let err = parsed(&["--node-state-database-url-file", url.to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--node-state-database-url-file"), "{err}");
        assert!(
            !err.contains("not a url at all"),
            "the file's text is not echoed: {err}"
        );
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
