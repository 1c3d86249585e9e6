//! `scheduler`: run Skylight's scheduler, or manage it (invite codes, tenants).

mod demo;
mod operator;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use skylight_devchain::ops::{self, ChainCommand};
use skylight_node_host::config::LogFormat;
use skylight_proto::admin as pb;
use skylight_scheduler::config::{Config, RunArgs, file, show};
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
    #[arg(long, global = true, env = "SKYLIGHT_DATA_DIR", default_value_os_t = skylight_client::files::skylight_home("scheduler"))]
    data_dir: PathBuf,
    /// How log lines are written: `human`, or `json` (one object a line); node-hosts write
    /// theirs the same way.
    #[arg(
        long,
        global = true,
        env = "SKYLIGHT_LOG_FORMAT",
        value_enum,
        default_value = "human"
    )]
    log_format: LogFormat,
    /// Which log lines are written, in `RUST_LOG`'s syntax (`info`, `info,ldk=debug`);
    /// node-hosts log at the same level.
    #[arg(
        long,
        global = true,
        env = "RUST_LOG",
        default_value = "info,h2=warn,tower=warn,hyper=warn",
        value_parser = log_filter
    )]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

/// A `RUST_LOG`-style filter that parses.
fn log_filter(text: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(text)
        .map(|_| text.to_string())
        .map_err(|e| format!("not a log filter ({e}); write it like info or info,ldk=debug"))
}

#[derive(Subcommand)]
enum Command {
    /// Run the scheduler (creates the data directory on first start).
    Run(Box<RunArgs>),
    /// The settings `run` would use.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Invite codes.
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Tenants' node-hosts.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Outgoing webhooks.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// The running scheduler's embedded regtest chain: mine, fund, tip.
    #[command(subcommand)]
    Chain(ChainCommand),
    /// Try Skylight: a scheduler in a temporary directory, two tenants with their own
    /// signers, a channel and a payment each way, each step printed as it happens.
    Demo {
        /// Stop and remove everything once the payments are made, instead of leaving it
        /// running for you to try.
        #[arg(long)]
        once: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the settings `scheduler run` would use with these flags, the environment and
    /// the configuration file, each with where it came from (secrets redacted).
    Show(Box<RunArgs>),
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
enum WebhooksCommand {
    /// List deliveries given up (refused by the receiver, or out of attempts).
    Failed,
    /// List deliveries still to make (due, or waiting to be retried).
    Pending,
}

#[derive(Subcommand)]
enum NodeCommand {
    /// Stop a tenant's node-host now (it stores its state and says goodbye to its peers
    /// first); the tenant's next Schedule starts it again.
    Stop {
        /// The tenant's node id (hex).
        node_id: String,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// List registered tenants.
    List,
    /// One tenant: state, devices, whether its node-host runs, its last schedule.
    Show {
        /// The tenant's node id (hex).
        node_id: String,
    },
    /// List a tenant's devices: name, issued, revoked.
    Devices {
        /// The tenant's node id (hex).
        node_id: String,
    },
    /// Revoke a tenant's device: the scheduler and the tenant's node refuse its
    /// certificate, and the tenant's signer its rune.
    RevokeDevice {
        /// The tenant's node id (hex).
        node_id: String,
        /// The device's name (see `tenant devices`).
        name: String,
    },
}

fn main() {
    if let Err(err) = real_main() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    // `run` and `config show` read the configuration file under their flags.
    let layered = match file::parse::<Cli>(
        std::env::args_os().collect(),
        &[&["run"], &["config", "show"]],
    ) {
        Ok(l) => l,
        Err(file::LayerError::Clap(e)) => e.exit(),
        Err(e) => return Err(e.into()),
    };
    let from_flag = layered.source("bitcoind-rpc") == Some(&file::Source::CommandLine);
    // node-hosts keep their own default level unless the operator chose one.
    let level_chosen = layered
        .source("log-level")
        .is_some_and(|s| *s != file::Source::Default);
    let cli = layered.parsed;
    cli.log_format.init_with(&cli.log_level);
    if let Command::Demo { once } = cli.command {
        return demo::run(once);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Run(mut args) => {
                args.bitcoind_rpc_from_command_line = from_flag;
                let log = (cli.log_format, level_chosen.then_some(cli.log_level));
                run(cli.data_dir, *args, log).await
            }
            Command::Config(ConfigCommand::Show(mut args)) => {
                args.bitcoind_rpc_from_command_line = from_flag;
                let args = args.with_environment();
                let password_set = args.bitcoind_rpc_password.is_some();
                // Checked as `run` checks them: a setting `run` would refuse is said here.
                Config::from_args(cli.data_dir, args)?;
                print!(
                    "{}",
                    show::render(layered.file.as_deref(), &layered.settings, password_set)
                );
                Ok(())
            }
            Command::Invite(cmd) => invite(cli.data_dir, cmd).await,
            Command::Tenant(TenantCommand::List) => tenants(cli.data_dir).await,
            Command::Tenant(TenantCommand::Show { node_id }) => {
                operator::show(cli.data_dir, node_id).await
            }
            Command::Node(NodeCommand::Stop { node_id }) => {
                operator::stop(cli.data_dir, node_id).await
            }
            Command::Tenant(cmd) => devices(cli.data_dir, cmd).await,
            Command::Webhooks(WebhooksCommand::Failed) => failed_deliveries(cli.data_dir).await,
            Command::Webhooks(WebhooksCommand::Pending) => pending_deliveries(cli.data_dir).await,
            Command::Demo { .. } => unreachable!("run before the runtime"),
            Command::Chain(cmd) => {
                let dir = Paths { dir: cli.data_dir }.chain_dir();
                let client = skylight_devchain::client::for_dir(&dir)
                    .context("is the scheduler running with its embedded chain?")?;
                ops::operate(&client, cmd).await
            }
        }
    })
}

async fn run(data_dir: PathBuf, args: RunArgs, log: (LogFormat, Option<String>)) -> Result<()> {
    let mut config = Config::from_args(data_dir, args.with_environment())?;
    config.node_host.log_format = Some(log.0);
    config.node_host.log_filter = log.1;
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
    Remote(admin::Client),
    Local(skylight_scheduler::store::Store),
}

async fn admin_handle(data_dir: PathBuf) -> Result<Admin> {
    let paths = Paths { dir: data_dir };
    if !paths.database().exists() && !paths.state_database().exists() {
        bail!(
            "no scheduler data in {}: start it once with `scheduler run`, or pass --data-dir",
            paths.dir.display()
        );
    }
    if let Ok(client) = admin::connect(&paths).await {
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
        "{:<66} {:<8} {:<10} {:<16} DEVICES",
        "NODE ID", "NETWORK", "STATE", "SIGNER"
    );
    for t in list {
        println!(
            "{:<66} {:<8} {:<10} {:<16} {}",
            t.node_id, t.network, t.state, t.signer_version, t.devices
        );
    }
    Ok(())
}

async fn failed_deliveries(data_dir: PathBuf) -> Result<()> {
    let list = match admin_handle(data_dir).await? {
        Admin::Remote(mut c) => {
            c.list_failed_deliveries(pb::ListFailedDeliveriesRequest {})
                .await
                .context("the scheduler refused")?
                .into_inner()
                .deliveries
        }
        Admin::Local(store) => store
            .failed_deliveries()?
            .into_iter()
            .map(admin::failed_delivery)
            .collect(),
    };
    println!(
        "{:<66} {:>7} {:<20} {:<16} {:>8}  {:<24} URI",
        "NODE ID", "WEBHOOK", "EVENT ID", "TYPE", "ATTEMPTS", "LAST ERROR"
    );
    for d in list {
        println!(
            "{:<66} {:>7} {:<20} {:<16} {:>8}  {:<24} {}",
            d.node_id, d.webhook_id, d.event_id, d.event_type, d.attempts, d.last_error, d.uri
        );
    }
    Ok(())
}

async fn pending_deliveries(data_dir: PathBuf) -> Result<()> {
    let list = match admin_handle(data_dir).await? {
        Admin::Remote(mut c) => {
            c.list_pending_deliveries(pb::ListPendingDeliveriesRequest {})
                .await
                .context("the scheduler refused")?
                .into_inner()
                .deliveries
        }
        Admin::Local(store) => store
            .pending_deliveries(admin::MAX_LISTED_PENDING)?
            .into_iter()
            .map(admin::pending_delivery)
            .collect(),
    };
    println!(
        "{:<66} {:>7} {:<20} {:<16} {:>8}  {:<15} LAST ERROR",
        "NODE ID", "WEBHOOK", "EVENT ID", "TYPE", "ATTEMPTS", "DUE (UNIX MS)"
    );
    for d in list {
        println!(
            "{:<66} {:>7} {:<20} {:<16} {:>8}  {:<15} {}",
            d.node_id,
            d.webhook_id,
            d.event_id,
            d.event_type,
            d.attempts,
            d.due_at_ms,
            d.last_error
        );
    }
    Ok(())
}

fn node_id_arg(hex_id: &str) -> Result<[u8; 33]> {
    skylight_certs::parse_node_id(hex_id.trim())
        .with_context(|| format!("{hex_id:?} is not a node id (66 hex digits)"))
}

async fn devices(data_dir: PathBuf, cmd: TenantCommand) -> Result<()> {
    let nodes_dir = Paths {
        dir: data_dir.clone(),
    }
    .nodes_dir();
    let handle = admin_handle(data_dir).await?;
    let list = match (cmd, handle) {
        (TenantCommand::Devices { node_id }, Admin::Remote(mut c)) => {
            c.list_devices(pb::TenantDevicesRequest { node_id })
                .await
                .context("the scheduler refused")?
                .into_inner()
                .devices
        }
        (TenantCommand::Devices { node_id }, Admin::Local(store)) => store
            .devices(&node_id_arg(&node_id)?)?
            .into_iter()
            .map(|(n, r)| skylight_scheduler::api::list_devices::device_info(n, r))
            .collect(),
        (TenantCommand::RevokeDevice { node_id, name }, Admin::Remote(mut c)) => {
            vec![
                c.revoke_device(pb::RevokeTenantDeviceRequest { node_id, name })
                    .await
                    .context("the scheduler refused")?
                    .into_inner(),
            ]
        }
        (TenantCommand::RevokeDevice { node_id, name }, Admin::Local(store)) => {
            let node = node_id_arg(&node_id)?;
            let revocations = skylight_scheduler::revocations::Revocations::load(store, nodes_dir)?;
            let record = revocations.revoke(&node, &name)?;
            vec![skylight_scheduler::api::list_devices::device_info(
                name, record,
            )]
        }
        (TenantCommand::List | TenantCommand::Show { .. }, _) => {
            unreachable!("handled by `tenants` and `operator::show`")
        }
    };
    println!("{:<40} {:<12} REVOKED", "NAME", "ISSUED");
    for d in list {
        let revoked = if d.revoked_at == 0 {
            "-".to_string()
        } else {
            d.revoked_at.to_string()
        };
        println!("{:<40} {:<12} {revoked}", d.name, d.issued_at);
    }
    Ok(())
}
