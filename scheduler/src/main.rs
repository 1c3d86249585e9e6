//! `scheduler`: run Skylight's scheduler, or manage it (invite codes, tenants).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use skylight_devchain::ops::{self, ChainCommand};
use skylight_proto::admin as pb;
use skylight_scheduler::config::{ChainSource, Config};
use skylight_scheduler::datadir::Paths;
use skylight_scheduler::shutdown::Shutdown;
use skylight_scheduler::{admin, server};

#[derive(Parser)]
#[command(
    name = "scheduler",
    version,
    about = "Skylight's scheduler: Greenlight-compatible tenant identity and node scheduling"
)]
struct Cli {
    /// Data directory: CA, certificates, database.
    #[arg(long, global = true, env = "SKYLIGHT_DATA_DIR", default_value_os_t = default_data_dir())]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the scheduler (creates the data directory on first start).
    Run(RunArgs),
    /// Invite codes.
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// The running scheduler's embedded regtest chain: mine, fund, tip.
    #[command(subcommand)]
    Chain(ChainCommand),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Address to listen on for gRPC (port 0 picks a free port; see `<data-dir>/grpc-uri`).
    #[arg(long, env = "SKYLIGHT_LISTEN", default_value = "127.0.0.1:2601")]
    listen: SocketAddr,
    /// Bitcoin network of every tenant: bitcoin, testnet, testnet4, signet or regtest.
    #[arg(long, env = "SKYLIGHT_NETWORK", default_value = "regtest")]
    network: String,
    /// Host names or addresses clients reach the scheduler by, besides localhost
    /// (comma-separated in the environment).
    #[arg(long = "hostname", env = "SKYLIGHT_HOSTNAMES", value_delimiter = ',')]
    hostnames: Vec<String>,
    /// Whether registering needs an invite code.
    #[arg(long, env = "SKYLIGHT_REQUIRE_INVITE", default_value_t = true, action = clap::ArgAction::Set)]
    require_invite: bool,
    /// Invite codes given to each new tenant to share.
    #[arg(long, env = "SKYLIGHT_INVITES_PER_TENANT", default_value_t = 3)]
    invites_per_tenant: u32,
    /// Seconds a challenge stays valid.
    #[arg(long, env = "SKYLIGHT_CHALLENGE_TTL", default_value_t = 60)]
    challenge_ttl: u64,
    /// Days a device certificate stays valid.
    #[arg(long, env = "SKYLIGHT_DEVICE_CERT_DAYS", default_value_t = 3650)]
    device_cert_days: u64,
    /// Seconds a stopping scheduler lets open calls finish before closing connections.
    #[arg(long, env = "SKYLIGHT_SHUTDOWN_GRACE", default_value_t = 5)]
    shutdown_grace: u64,
    /// An external bitcoind's JSON-RPC URL (`http://user:pass@host:port`). Without it, on
    /// regtest, the scheduler runs its own embedded chain.
    #[arg(long, env = "SKYLIGHT_BITCOIND_RPC")]
    bitcoind_rpc: Option<String>,
    /// Where the embedded chain's JSON-RPC listens.
    #[arg(
        long,
        env = "SKYLIGHT_CHAIN_RPC_LISTEN",
        default_value = "127.0.0.1:18443"
    )]
    chain_rpc_listen: SocketAddr,
    /// Blocks the embedded chain mines to its faucet when new (101 makes one coinbase
    /// spendable).
    #[arg(long, env = "SKYLIGHT_CHAIN_INITIAL_BLOCKS", default_value_t = 101)]
    chain_initial_blocks: u32,
    /// The node-host binary (default: next to this scheduler).
    #[arg(long, env = "SKYLIGHT_NODE_HOST_BIN")]
    node_host_bin: Option<PathBuf>,
    /// Seconds with no client call and no signer after which a node-host stops.
    #[arg(long, env = "SKYLIGHT_NODE_IDLE_TIMEOUT", default_value_t = 600)]
    node_idle_timeout: u64,
    /// Seconds a node call that needs the tenant's signer (an invoice, say) waits for the
    /// signer to attach before it fails.
    #[arg(long, env = "SKYLIGHT_NODE_SIGNER_WAIT", default_value_t = 30)]
    node_signer_wait: u64,
}

#[derive(Subcommand)]
enum InviteCommand {
    /// Mint operator invite codes and print them, one a line.
    Create {
        /// How many.
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// List every invite code: code, owner, redeemed by.
    List,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// List registered tenants.
    List,
}

fn default_data_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".skylight")
        .join("scheduler")
}

fn main() {
    if let Err(err) = real_main() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,h2=warn,tower=warn,hyper=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run(cli.data_dir, args).await,
            Command::Invite(cmd) => invite(cli.data_dir, cmd).await,
            Command::Tenant(TenantCommand::List) => tenants(cli.data_dir).await,
            Command::Chain(cmd) => {
                let dir = Paths { dir: cli.data_dir }.chain_dir();
                let client = skylight_devchain::client::for_dir(&dir)
                    .context("is the scheduler running with its embedded chain?")?;
                ops::operate(&client, cmd).await
            }
        }
    })
}

async fn run(data_dir: PathBuf, args: RunArgs) -> Result<()> {
    if args.network.parse::<bitcoin::Network>().is_err() {
        bail!(
            "unknown network {:?}: use bitcoin, testnet, testnet4, signet or regtest",
            args.network
        );
    }
    let mut config = Config::new(data_dir);
    config.listen = args.listen;
    config.network = args.network;
    config.hostnames = args.hostnames;
    config.require_invite = args.require_invite;
    config.invites_per_tenant = args.invites_per_tenant;
    config.challenge_ttl = Duration::from_secs(args.challenge_ttl);
    config.device_cert_days = args.device_cert_days;
    config.shutdown_grace = Duration::from_secs(args.shutdown_grace);
    if let Some(bin) = args.node_host_bin {
        config.node_host_bin = bin;
    }
    config.node_idle_timeout = Duration::from_secs(args.node_idle_timeout);
    config.node_signer_wait = Duration::from_secs(args.node_signer_wait);
    config.chain = match args.bitcoind_rpc {
        Some(url) => ChainSource::Bitcoind { url },
        None if config.network == "regtest" => ChainSource::Embedded {
            listen: args.chain_rpc_listen,
            initial_blocks: args.chain_initial_blocks,
        },
        None => bail!(
            "--bitcoind-rpc is required on {}: the embedded chain is regtest only",
            config.network
        ),
    };

    let shutdown = Shutdown::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("cannot listen for SIGTERM");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("stopping");
        trigger.trigger();
    });
    server::run(config, shutdown).await
}

/// The store, through the running scheduler's socket if there is one, else directly.
enum Admin {
    Remote(pb::admin_client::AdminClient<tonic::transport::Channel>),
    Local(skylight_scheduler::store::Store),
}

async fn admin_handle(data_dir: PathBuf) -> Result<Admin> {
    let paths = Paths { dir: data_dir };
    if !paths.database().exists() {
        bail!(
            "no scheduler data in {}: start it once with `scheduler run`, or pass --data-dir",
            paths.dir.display()
        );
    }
    if let Ok(client) = admin::connect(&paths.admin_socket()).await {
        return Ok(Admin::Remote(client));
    }
    Ok(Admin::Local(server::open_store(&paths, None)?))
}

async fn invite(data_dir: PathBuf, cmd: InviteCommand) -> Result<()> {
    let handle = admin_handle(data_dir).await?;
    match cmd {
        InviteCommand::Create { count } => {
            if count == 0 || count > admin::MAX_INVITES_PER_CALL {
                bail!(
                    "--count must be between 1 and {}",
                    admin::MAX_INVITES_PER_CALL
                );
            }
            let codes = match handle {
                Admin::Remote(mut c) => {
                    c.create_invite_codes(pb::CreateInviteCodesRequest { count })
                        .await
                        .context("the scheduler refused")?
                        .into_inner()
                        .codes
                }
                Admin::Local(store) => store.create_invites(count)?,
            };
            for code in codes {
                println!("{code}");
            }
        }
        InviteCommand::List => {
            let codes = match handle {
                Admin::Remote(mut c) => {
                    c.list_invite_codes(pb::ListInviteCodesRequest {})
                        .await
                        .context("the scheduler refused")?
                        .into_inner()
                        .codes
                }
                Admin::Local(store) => store
                    .invites()?
                    .into_iter()
                    .map(admin::invite_info)
                    .collect(),
            };
            println!("{:<10} {:<66} REDEEMED BY", "CODE", "OWNER");
            for c in codes {
                let owner = if c.owner.is_empty() {
                    "operator".to_string()
                } else {
                    c.owner
                };
                let redeemed = if c.redeemed_by.is_empty() {
                    "-".to_string()
                } else {
                    c.redeemed_by
                };
                println!("{:<10} {owner:<66} {redeemed}", c.code);
            }
        }
    }
    Ok(())
}

async fn tenants(data_dir: PathBuf) -> Result<()> {
    let list = match admin_handle(data_dir).await? {
        Admin::Remote(mut c) => {
            c.list_tenants(pb::ListTenantsRequest {})
                .await
                .context("the scheduler refused")?
                .into_inner()
                .tenants
        }
        Admin::Local(store) => store
            .tenants()?
            .into_iter()
            .map(admin::tenant_info)
            .collect(),
    };
    println!(
        "{:<66} {:<8} {:<16} DEVICES",
        "NODE ID", "NETWORK", "SIGNER"
    );
    for t in list {
        println!(
            "{:<66} {:<8} {:<16} {}",
            t.node_id, t.network, t.signer_version, t.devices
        );
    }
    Ok(())
}
