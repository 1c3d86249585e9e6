//! node-host's settings: its command line, typed. The scheduler builds a [`Config`] and
//! starts node-host with [`Config::to_args`]; node-host reads it back with
//! [`Config::from_args`]. Each default is written once, in the `#[arg]` attributes below.
//!
//! Nothing secret is ever on the command line: the chain's credentials come from a cookie
//! file, the server key from the node directory ([`crate::paths::NodeDir`]).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use lightning_signer::bitcoin::Network;
use lightning_signer::bitcoin::secp256k1::PublicKey;

use crate::paths::NodeDir;

/// The default of `--lease-ttl` (also what the scheduler allows a start that may wait for
/// a crashed predecessor's lease to run out).
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

/// How one tenant's node-host runs.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "node-host",
    version,
    about = "One Skylight tenant's node (started by the scheduler)",
    after_help = "An exported node runs on its owner's machine with `node-host standalone` (see `node-host standalone --help`)."
)]
pub struct Config {
    /// The tenant's node id (66 hex characters).
    #[arg(long, value_parser = node_id)]
    pub node_id: PublicKey,
    /// Bitcoin network.
    #[arg(long, default_value = "regtest", value_parser = network)]
    pub network: Network,
    /// The tenant's node directory (its files: see `paths.rs`).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Address for the node's gRPC (port 0 picks one; written to `<data-dir>/grpc-uri`).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Address for a plaintext gRPC health service (`grpc.health.v1`), for a cluster's
    /// readiness probe: SERVING while the node server serves, nothing else on it. None by
    /// default.
    #[arg(long)]
    pub health_listen: Option<SocketAddr>,
    /// The chain's bitcoind JSON-RPC URL.
    #[arg(long)]
    pub bitcoind_rpc: String,
    /// A cookie file with the RPC credentials (`user:password`).
    #[arg(long)]
    pub bitcoind_cookie: Option<PathBuf>,
    /// Stop after this many seconds with no client call and no signer attached (0: never).
    #[arg(long = "idle-timeout", default_value = "600", value_parser = seconds)]
    pub idle_timeout: Duration,
    /// Address where Lightning peers connect (port 0 picks one, kept across restarts).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub p2p_listen: SocketAddr,
    /// The host name or address peers are told to reach the node at (Getinfo's
    /// `address`), with the port it listens on; none by default.
    #[arg(long, value_parser = announce_host)]
    pub p2p_announce: Option<String>,
    /// Seconds a node call that needs the signer (an invoice, say) waits for one to attach.
    #[arg(long = "signer-wait", default_value = "30", value_parser = seconds)]
    pub signer_wait: Duration,
    /// Seconds a signing request waits for the signer's answer.
    #[arg(long = "signer-deadline", default_value = "120", value_parser = seconds)]
    pub signer_deadline: Duration,
    /// Milliseconds between polls of the chain for a new tip.
    #[arg(long = "chain-poll-ms", default_value = "1000", value_parser = millis)]
    pub chain_poll: Duration,
    /// Signed client requests whose timestamp is further than this many seconds from the
    /// node's clock are refused.
    #[arg(long = "signed-request-window", default_value = "300", value_parser = seconds)]
    pub signed_request_window: Duration,
    /// The scheduler's events socket, where the node hands over the events it raises (for
    /// webhooks); without it they stay in the node's outbox.
    #[arg(long)]
    pub events_socket: Option<PathBuf>,
    /// Milliseconds a signing request may wait with no signer attached before the node
    /// raises `signer_needed` (an app's webhook wakes its signer).
    #[arg(long = "signer-needed-after-ms", default_value = "3000", value_parser = millis)]
    pub signer_needed_after: Duration,
    /// Blocks the chain's tip may be ahead of what the node has processed before it raises
    /// `node_stuck`.
    #[arg(long = "stuck-after-blocks", default_value = "6")]
    pub stuck_after_blocks: u64,
    /// How log lines are written: `human`, or `json` (one object a line, for collectors).
    #[arg(long = "log-format", value_enum, default_value = "human")]
    pub log_format: LogFormat,
    /// Where log lines go, rotated at --log-max-bytes (the two before kept as `.1` and
    /// `.2`); without it, standard error.
    #[arg(long)]
    pub log_file: Option<PathBuf>,
    /// The size at which --log-file is rotated.
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    pub log_max_bytes: usize,
    /// Whether node-host gives up all file access but its node directory (Landlock):
    /// `best-effort` (where the kernel has it), `required` (or not start) or `off`.
    #[arg(long, value_enum, default_value = "best-effort")]
    pub isolation: crate::isolation::Isolation,
    /// Keep the node's state in PostgreSQL, not in the node directory: a file holding the
    /// database's URL (it holds a password, so never the command line), e.g.
    /// `postgres://skylight:…@db.internal:5432/skylight`.
    #[arg(long)]
    pub state_database_url_file: Option<PathBuf>,
    /// Seconds the tenant's lease lasts without a renewal, with --state-database-url-file:
    /// how long a crashed node-host keeps its successor waiting. A node-host that has not
    /// renewed it for two thirds of this stops itself.
    #[arg(long = "lease-ttl", default_value = "30", value_parser = seconds)]
    pub lease_ttl: Duration,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: one readable line an event.
    #[default]
    Human,
    /// For log collectors: one JSON object a line.
    Json,
}

impl LogFormat {
    /// Its name on a command line.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        }
    }

    /// Logs to standard error in this format, at the level `RUST_LOG` gives (else
    /// `default_filter`); colours only on a terminal.
    pub fn init(self, default_filter: &str) {
        self.init_to(default_filter, None)
    }

    /// As [`LogFormat::init`], to `file` when given (a log kept to a size, see
    /// [`crate::log_file`]).
    pub fn init_to(self, default_filter: &str, file: Option<crate::log_file::RotatingFile>) {
        let filter = std::env::var(tracing_subscriber::EnvFilter::DEFAULT_ENV)
            .unwrap_or_else(|_| default_filter.into());
        match file {
            None => self.init_with(&filter),
            Some(f) => self.init_writer(&filter, std::sync::Mutex::new(f), false),
        }
    }

    /// Logs to standard error in this format, at the level `filter` gives (`RUST_LOG`'s
    /// syntax, e.g. `info,ldk=debug`); a filter that does not parse logs at `info`.
    pub fn init_with(self, filter: &str) {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        self.init_writer(filter, std::io::stderr, terminal)
    }

    fn init_writer<W>(self, filter: &str, writer: W, ansi: bool)
    where
        W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
    {
        let filter = tracing_subscriber::EnvFilter::try_new(filter)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer);
        match self {
            LogFormat::Human => builder.with_ansi(ansi).init(),
            LogFormat::Json => builder.json().init(),
        }
    }
}

impl Config {
    /// The defaults for the node `node_id` in `data_dir`, following the chain at
    /// `bitcoind_rpc`.
    pub fn new(node_id: PublicKey, data_dir: PathBuf, bitcoind_rpc: String) -> Self {
        let args = [
            OsString::from("--node-id"),
            node_id.to_string().into(),
            "--data-dir".into(),
            data_dir.into(),
            "--bitcoind-rpc".into(),
            bitcoind_rpc.into(),
        ];
        Self::from_args(args).expect("the defaults parse")
    }

    /// Reads the settings from `args` (without the program name).
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Self::try_parse_from(
            std::iter::once(OsString::from("node-host")).chain(args.into_iter().map(Into::into)),
        )
    }

    /// The command line that gives these settings (without the program name).
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--node-id".into(),
            self.node_id.to_string().into(),
            "--network".into(),
            self.network.to_string().into(),
            "--data-dir".into(),
            self.data_dir.clone().into(),
            "--listen".into(),
            self.listen.to_string().into(),
            "--bitcoind-rpc".into(),
            self.bitcoind_rpc.clone().into(),
        ];
        if let Some(cookie) = &self.bitcoind_cookie {
            args.extend(["--bitcoind-cookie".into(), cookie.clone().into()]);
        }
        if let Some(host) = &self.p2p_announce {
            args.extend(["--p2p-announce".into(), host.into()]);
        }
        if let Some(socket) = &self.events_socket {
            args.extend(["--events-socket".into(), socket.clone().into()]);
        }
        if let Some(file) = &self.log_file {
            args.extend(["--log-file".into(), file.clone().into()]);
        }
        if let Some(addr) = &self.health_listen {
            args.extend(["--health-listen".into(), addr.to_string().into()]);
        }
        if let Some(file) = &self.state_database_url_file {
            args.extend(["--state-database-url-file".into(), file.clone().into()]);
        }
        let secs = |d: Duration| OsString::from(d.as_secs().to_string());
        args.extend([
            "--idle-timeout".into(),
            secs(self.idle_timeout),
            "--p2p-listen".into(),
            self.p2p_listen.to_string().into(),
            "--signer-wait".into(),
            secs(self.signer_wait),
            "--signer-deadline".into(),
            secs(self.signer_deadline),
            "--chain-poll-ms".into(),
            self.chain_poll.as_millis().to_string().into(),
            "--signed-request-window".into(),
            secs(self.signed_request_window),
            "--signer-needed-after-ms".into(),
            self.signer_needed_after.as_millis().to_string().into(),
            "--stuck-after-blocks".into(),
            self.stuck_after_blocks.to_string().into(),
            "--log-format".into(),
            self.log_format.as_str().into(),
            "--isolation".into(),
            self.isolation.as_str().into(),
            "--log-max-bytes".into(),
            self.log_max_bytes.to_string().into(),
            "--lease-ttl".into(),
            secs(self.lease_ttl),
        ]);
        args
    }

    /// The node directory.
    pub fn dir(&self) -> NodeDir {
        NodeDir::new(&self.data_dir)
    }
}

fn node_id(text: &str) -> Result<PublicKey, String> {
    text.parse()
        .map_err(|_| "a node id is 66 hex characters (a compressed public key)".to_string())
}

fn network(text: &str) -> Result<Network, String> {
    text.parse()
        .map_err(|_| "use bitcoin, testnet, testnet4, signet or regtest".to_string())
}

/// A host to announce: an IP address, or a DNS name as BOLT 7 carries one (ASCII letters,
/// digits, `-` and `.`, at most 255 bytes).
pub fn announce_host(text: &str) -> Result<String, String> {
    if text.parse::<std::net::IpAddr>().is_ok() {
        return Ok(text.to_string());
    }
    let fine = !text.is_empty()
        && text.len() <= 255
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !text.starts_with(['-', '.']);
    if fine {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!(
            "{text:?} is neither an IP address nor a host name (letters, digits, '-' and '.')"
        ))
    }
}

fn seconds(text: &str) -> Result<Duration, String> {
    text.parse()
        .map(Duration::from_secs)
        .map_err(|_| "a whole number of seconds".to_string())
}

fn millis(text: &str) -> Result<Duration, String> {
    text.parse()
        .map(Duration::from_millis)
        .map_err(|_| "a whole number of milliseconds".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> PublicKey {
        "02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f283686619"
            .parse()
            .unwrap()
    }

    #[test]
    fn defaults_are_the_command_lines_defaults() {
        let c = Config::new(node(), "/n".into(), "http://127.0.0.1:18443".into());
        assert_eq!(c.network, Network::Regtest);
        assert_eq!(c.idle_timeout, Duration::from_secs(600));
        assert_eq!(c.signer_wait, Duration::from_secs(30));
        assert_eq!(c.signer_deadline, Duration::from_secs(120));
        assert_eq!(c.chain_poll, Duration::from_millis(1000));
        assert_eq!(c.signed_request_window, Duration::from_secs(300));
        assert_eq!(c.bitcoind_cookie, None);
        assert_eq!(c.events_socket, None);
        assert_eq!(c.signer_needed_after, Duration::from_secs(3));
        assert_eq!(c.stuck_after_blocks, 6);
        assert_eq!(c.log_format, LogFormat::Human);
        assert_eq!(c.state_database_url_file, None);
        assert_eq!(c.lease_ttl, DEFAULT_LEASE_TTL);
    }

    #[test]
    fn a_config_survives_its_command_line() {
        let mut c = Config::new(node(), "/n".into(), "http://127.0.0.1:1".into());
        c.network = Network::Signet;
        c.bitcoind_cookie = Some("/c/rpc.cookie".into());
        c.idle_timeout = Duration::from_secs(7);
        c.signer_wait = Duration::from_secs(2);
        c.chain_poll = Duration::from_millis(50);
        c.p2p_listen = "127.0.0.1:9735".parse().unwrap();
        c.p2p_announce = Some("node.example.org".into());
        c.events_socket = Some("/s/events.sock".into());
        c.signer_needed_after = Duration::from_millis(500);
        c.stuck_after_blocks = 3;
        c.log_format = LogFormat::Json;
        c.state_database_url_file = Some("/n/state-database-url".into());
        c.lease_ttl = Duration::from_secs(5);
        assert_eq!(Config::from_args(c.to_args()).unwrap(), c);
    }

    #[test]
    fn an_announced_host_is_an_address_or_a_dns_name() {
        assert_eq!(announce_host("203.0.113.7").unwrap(), "203.0.113.7");
        assert_eq!(announce_host("2001:db8::1").unwrap(), "2001:db8::1");
        assert_eq!(announce_host("LN.Example.org").unwrap(), "ln.example.org");
        for bad in ["", "-x.org", "a b", "host:9735", "ünï.org"] {
            assert!(announce_host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_bad_node_id_is_refused_with_what_one_looks_like() {
        let err = Config::from_args([
            "--node-id",
            "02ab",
            "--data-dir",
            "/n",
            "--bitcoind-rpc",
            "http://x:1",
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("66 hex characters"), "{err}");
    }
}
