//! `signer-cli`: the user's device for a Skylight node.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use skylight_client::device_dir::{DataDir, Settings};
use skylight_client::keys::NodeKeys;
use skylight_client::runes::RuneMaster;
use skylight_client::secret::HsmSecret;
use skylight_client::tls::TlsIdentity;
use skylight_client::{creds, identity};

mod devices;
mod export;
mod node_cmd;
mod pair;
mod print;
mod webhooks;
use node_cmd::{NodeCall, node_call};

#[derive(Parser)]
#[command(
    name = "signer-cli",
    version,
    about = "The device that holds a Skylight node's keys"
)]
struct Cli {
    /// Data directory: secret, settings, credentials.
    #[arg(long, global = true, env = "SKYLIGHT_SIGNER_DIR", default_value_os_t = skylight_client::files::skylight_home("signer"))]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct SchedulerArgs {
    /// The scheduler's URI.
    #[arg(long, env = "GL_SCHEDULER_GRPC_URI")]
    scheduler: String,
    /// The CA certificate that signs the scheduler's (the operator's ca.pem).
    #[arg(long, env = "GL_CA_CRT")]
    ca_cert: PathBuf,
    /// The nobody certificate chain.
    #[arg(long, env = "GL_NOBODY_CRT")]
    nobody_cert: PathBuf,
    /// The nobody key.
    #[arg(long, env = "GL_NOBODY_KEY")]
    nobody_key: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Create the node secret: a new BIP39 mnemonic (printed once: write it down), or import
    /// one, or a raw 32-byte secret, read from standard input.
    Init {
        /// Bitcoin network.
        #[arg(long, default_value = "regtest")]
        network: String,
        /// Read a BIP39 mnemonic from standard input instead of making one.
        #[arg(long, conflicts_with = "import_secret_hex")]
        import_mnemonic: bool,
        /// Read a raw secret, 64 hex characters, from standard input.
        #[arg(long)]
        import_secret_hex: bool,
    },
    /// Register this node with the scheduler.
    Register {
        #[command(flatten)]
        scheduler: SchedulerArgs,
        /// Invite code.
        #[arg(long)]
        invite: Option<String>,
    },
    /// Get a new device certificate for a node registered before.
    Recover {
        #[command(flatten)]
        scheduler: SchedulerArgs,
    },
    /// Show the node id, network, scheduler and certificate expiry.
    Show,
    /// Run the signer: attach to the node whenever it is scheduled and sign what VLS
    /// approves, until interrupted.
    Run {
        /// Attach to the node at this URI alone, with no scheduler (a node run with
        /// `node-host standalone`: its `grpc-uri`).
        #[arg(long, env = "SKYLIGHT_NODE_URI")]
        node: Option<String>,
    },
    /// Ask the scheduler to start the node; print where it listens.
    Schedule,
    /// Pair this (new, seedless) device with a node: prints its device id for a device of
    /// the node to approve, waits, and stores its credentials.
    Pair {
        #[command(flatten)]
        scheduler: SchedulerArgs,
        /// This device's name.
        #[arg(long)]
        name: String,
        /// What it is, shown to the approving device.
        #[arg(long, default_value = "")]
        description: String,
        /// Ask for reads only (Get…, List…).
        #[arg(long, conflicts_with_all = ["pay_only", "restrictions"])]
        read_only: bool,
        /// Ask for payments only.
        #[arg(long, conflicts_with = "restrictions")]
        pay_only: bool,
        /// Ask for these rune restrictions (`&` between, `|` within).
        #[arg(long)]
        restrictions: Option<String>,
        /// Bitcoin network.
        #[arg(long, default_value = "regtest")]
        network: String,
    },
    /// Approve a new device waiting to be paired (its id, from `signer-cli pair`).
    Approve {
        /// The new device's id.
        device_id: String,
        /// Approve without asking.
        #[arg(long)]
        yes: bool,
    },
    /// List the node's devices: name, issued, revoked.
    Devices,
    /// Revoke a device: the scheduler and the node refuse its certificate, and this
    /// signer its requests (see `devices` for names).
    Revoke {
        /// The device's name.
        name: String,
    },
    /// The node's outgoing webhooks at the scheduler: add, list, rotate, delete.
    Webhook {
        #[command(subcommand)]
        call: webhooks::WebhookCall,
    },
    /// Leave the scheduler with the node: ExportNode stops the hosted node for good; the
    /// export is downloaded, opened with this seed, checked and unpacked into DIR (new),
    /// to run with `node-host standalone`.
    Export {
        /// Where to unpack the node (must not exist, or be empty); the sealed file is kept
        /// beside it as DIR.skylight-export.
        dir: PathBuf,
        /// Export without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Call the node (scheduling it first); calls are signed with this device's key.
    Node {
        /// Call the node at this URI itself, with no scheduler (a node run with
        /// `node-host standalone`).
        #[arg(long, env = "SKYLIGHT_NODE_URI")]
        node: Option<String>,
        #[command(subcommand)]
        call: NodeCall,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,h2=warn,tower=warn,hyper=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("cannot start the async runtime");
    if let Err(err) = runtime.block_on(run(cli)) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    let dir = DataDir(cli.data_dir);
    match cli.command {
        Command::Init {
            network,
            import_mnemonic,
            import_secret_hex,
        } => init(&dir, &network, import_mnemonic, import_secret_hex),
        Command::Register { scheduler, invite } => {
            let (settings, keys, nobody) = prepare(&dir, &scheduler)?;
            let device = identity::register(
                &scheduler.scheduler,
                &nobody,
                &keys,
                &settings.network,
                invite.as_deref(),
            )
            .await?;
            save(&dir, settings, &scheduler.scheduler, &device)?;
            println!("registered node {}", hex::encode(keys.node_id_bytes()));
            Ok(())
        }
        Command::Recover { scheduler } => {
            let (settings, keys, nobody) = prepare(&dir, &scheduler)?;
            let device = identity::recover(&scheduler.scheduler, &nobody, &keys).await?;
            save(&dir, settings, &scheduler.scheduler, &device)?;
            println!("recovered node {}", hex::encode(keys.node_id_bytes()));
            Ok(())
        }
        Command::Show => show(&dir),
        Command::Run { node } => {
            let settings = Settings::load(&dir)?;
            let device = creds::identity(&creds::load(&dir.credentials())?);
            let secret = HsmSecret::load(&dir.secret())?;
            let network: bitcoin::Network = settings
                .network
                .parse()
                .context("bad network in settings")?;
            // The marks that let this device refuse a rolled-back state survive restarts.
            let signer = skylight_client::signer::Signer::new(&secret, network)
                .with_watermarks(&dir.state_marks())?
                .with_revocations(&dir.revoked_devices());
            let stop = async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("SIGTERM handler");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            };
            if let Some(node) = node {
                eprintln!("signer running for node {} (at {node})", settings.node_id);
                return skylight_client::follow::run_direct(node, device, signer, stop).await;
            }
            let uri = settings.scheduler.clone().context(
                "this device is not registered: run `signer-cli register` or `recover` first (or `run --node URI` for a node run standalone)",
            )?;
            eprintln!(
                "signer running for node {} (scheduler {uri})",
                settings.node_id
            );
            skylight_client::follow::run(uri, device, signer, stop).await
        }
        Command::Node { node, call } => node_call(&dir, node.as_deref(), call).await,
        Command::Webhook { call } => webhooks::call(&dir, call).await,
        Command::Pair {
            scheduler,
            name,
            description,
            read_only,
            pay_only,
            restrictions,
            network,
        } => {
            let restrictions = if read_only {
                skylight_client::runes::READ_ONLY.to_string()
            } else if pay_only {
                skylight_client::runes::PAY_ONLY.to_string()
            } else {
                restrictions.unwrap_or_default()
            };
            let asked = pair::Asked {
                name,
                description,
                restrictions,
                network,
            };
            pair::pair(&dir, &scheduler, asked).await
        }
        Command::Approve { device_id, yes } => pair::approve(&dir, &device_id, yes).await,
        Command::Devices => devices::list(&dir).await,
        Command::Export { dir: into, yes } => export::export(&dir, &into, yes).await,
        Command::Revoke { name } => devices::revoke(&dir, &name).await,
        Command::Schedule => {
            let (uri, device, _) = device_context(&dir)?;
            let mut c = skylight_client::tls::scheduler(&uri, &device).await?;
            let info = c
                .schedule(skylight_proto::scheduler::ScheduleRequest::default())
                .await
                .map_err(|status| skylight_client::tls::Refused {
                    rpc: "Schedule",
                    status,
                })?
                .into_inner();
            println!("{}", info.grpc_uri);
            Ok(())
        }
    }
}

fn init(dir: &DataDir, network: &str, import_mnemonic: bool, import_hex: bool) -> Result<()> {
    let net: bitcoin::Network = network
        .parse()
        .with_context(|| format!("unknown network {network:?}"))?;
    if dir.secret().exists() {
        bail!(
            "{} exists already: this device is initialised",
            dir.secret().display()
        );
    }
    let (words, secret) = if import_mnemonic || import_hex {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let secret = if import_mnemonic {
            HsmSecret::from_mnemonic(&line)?
        } else {
            HsmSecret::from_hex(&line)?
        };
        (None, secret)
    } else {
        let (words, secret) = HsmSecret::generate()?;
        (Some(words), secret)
    };
    std::fs::create_dir_all(&dir.0)
        .with_context(|| format!("cannot create {}", dir.0.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o700))?;
    }
    secret.save_new(&dir.secret())?;
    let keys = NodeKeys::derive(&secret, net);
    Settings {
        network: network.to_string(),
        node_id: hex::encode(keys.node_id_bytes()),
        scheduler: None,
    }
    .save(dir)?;
    if let Some(words) = words {
        println!("Your recovery words (write them down; they are shown only this once):");
        println!("  {words}");
    }
    println!("node id {}", hex::encode(keys.node_id_bytes()));
    Ok(())
}

fn prepare(dir: &DataDir, args: &SchedulerArgs) -> Result<(Settings, NodeKeys, TlsIdentity)> {
    let settings = Settings::load(dir)?;
    let secret = HsmSecret::load(&dir.secret())?;
    let network: bitcoin::Network = settings
        .network
        .parse()
        .context("bad network in settings")?;
    let keys = NodeKeys::derive(&secret, network);
    Ok((settings, keys, nobody(args)?))
}

/// The nobody identity the scheduler arguments name.
fn nobody(args: &SchedulerArgs) -> Result<TlsIdentity> {
    let read =
        |p: &PathBuf| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    Ok(TlsIdentity {
        ca_pem: read(&args.ca_cert)?,
        cert_pem: read(&args.nobody_cert)?,
        key_pem: read(&args.nobody_key)?,
    })
}

fn save(
    dir: &DataDir,
    mut settings: Settings,
    uri: &str,
    device: &skylight_proto::credentials::Device,
) -> Result<()> {
    let mut device = device.clone();
    mint_rune(dir, &mut device)?;
    creds::save(&dir.credentials(), &device)?;
    settings.scheduler = Some(uri.to_string());
    settings.save(dir)
}

/// Gives `device` its rune, minted from this directory's seed and bound to the device's
/// key, as gl-client does: it travels with every node call the device signs.
fn mint_rune(dir: &DataDir, device: &mut skylight_proto::credentials::Device) -> Result<()> {
    let secret = HsmSecret::load(&dir.secret())?;
    device.rune = RuneMaster::new(&secret).device_rune(&device.key)?;
    Ok(())
}

/// Asks `question` on the terminal; whether the answer was yes.
fn confirmed(question: &str) -> Result<bool> {
    println!("{question} [y/N]");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// The scheduler, device identity and settings a registered device uses.
fn device_context(dir: &DataDir) -> Result<(String, skylight_client::tls::TlsIdentity, Settings)> {
    let settings = Settings::load(dir)?;
    let uri = settings
        .scheduler
        .clone()
        .context("this device is not registered: run `signer-cli register` or `recover` first")?;
    let device = creds::identity(&creds::load(&dir.credentials())?);
    Ok((uri, device, settings))
}

fn show(dir: &DataDir) -> Result<()> {
    let settings = Settings::load(dir)?;
    println!("node id:   {}", settings.node_id);
    println!("network:   {}", settings.network);
    println!(
        "scheduler: {}",
        settings.scheduler.as_deref().unwrap_or("(not registered)")
    );
    match creds::load(&dir.credentials()) {
        Ok(device) => {
            let cert = String::from_utf8_lossy(&device.cert);
            let cn = skylight_certs::subject_cn(&cert)?;
            let expiry = skylight_certs::not_after(&cert)?;
            println!("device:    {cn}");
            println!("expires:   {} (unix {expiry})", format_utc(expiry));
        }
        Err(_) => println!("device:    (no credentials yet: register or recover)"),
    }
    Ok(())
}

/// A readable UTC time from unix seconds.
fn format_utc(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| "(out of range)".into())
}
