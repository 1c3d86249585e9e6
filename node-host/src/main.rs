//! `node-host`: one tenant's node, started by the scheduler.
//!
//! What runs today is the signer link: the node server (`greenlight.Node` over mutual TLS,
//! trusting only the tenant's CA) with the stage and the durable signer state. The LDK
//! Lightning node is not built yet, and node-host says so at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use skylight_node_host::activity::Activity;
use skylight_node_host::hsm_service::HsmService;
use skylight_node_host::node_service::NodeService;
use skylight_node_host::server::{self, ServerTls};
use skylight_node_host::signed_requests::Verifier;
use skylight_node_host::signer_state::SignerState;
use skylight_node_host::stage::Stage;

#[derive(Parser)]
#[command(
    name = "node-host",
    version,
    about = "One Skylight tenant's node (started by the scheduler)"
)]
struct Args {
    /// The tenant's node id (66 hex characters).
    #[arg(long)]
    node_id: String,
    /// Bitcoin network.
    #[arg(long, default_value = "regtest")]
    network: String,
    /// The tenant's data directory.
    #[arg(long)]
    data_dir: PathBuf,
    /// Address for the node's gRPC (port 0 picks one; written to `<data-dir>/grpc-uri`).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The node server's certificate chain (PEM).
    #[arg(long)]
    cert: PathBuf,
    /// Its private key (PEM).
    #[arg(long)]
    key: PathBuf,
    /// The tenant's CA (PEM): the only client trust anchor.
    #[arg(long)]
    tenant_ca: PathBuf,
    /// The chain's bitcoind JSON-RPC URL.
    #[arg(long)]
    bitcoind_rpc: Option<String>,
    /// A cookie file with the RPC credentials.
    #[arg(long)]
    bitcoind_cookie: Option<PathBuf>,
    /// Stop after this many seconds with no client call and no signer attached.
    #[arg(long, default_value_t = 600)]
    idle_timeout: u64,
    /// Signed client requests whose timestamp is further than this many seconds from the
    /// node's clock are refused.
    #[arg(long, default_value_t = 300)]
    signed_request_window: u64,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,h2=warn,tower=warn,hyper=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot start the async runtime");
    if let Err(e) = runtime.block_on(run(args)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

async fn run(args: Args) -> Result<()> {
    let node_id: [u8; 33] = hex::decode(&args.node_id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .context("--node-id must be 66 hex characters")?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&args.data_dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let tls = ServerTls {
        cert_chain_pem: read(&args.cert)?,
        key_pem: read(&args.key)?,
        tenant_ca_pem: read(&args.tenant_ca)?,
    };
    let state = Arc::new(
        SignerState::open(&args.data_dir.join("signer_state.redb"))
            .context("cannot open the signer state")?,
    );
    let stage = Arc::new(Stage::new());
    let activity = Arc::new(Activity::default());
    let (listener, addr) = server::bind(args.listen).await?;
    let uri = format!("https://localhost:{}", addr.port());

    tracing::warn!(
        node_id = %args.node_id,
        network = %args.network,
        "the Lightning node is not built yet in this version: only the signer link runs"
    );
    if let Some(url) = &args.bitcoind_rpc {
        tracing::info!(%url, "chain source recorded (used once the Lightning node is built)");
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let idle = Duration::from_secs(args.idle_timeout);
    {
        let (stage, activity, stop_tx) = (stage.clone(), activity.clone(), stop_tx.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                if stage.signers() > 0 {
                    activity.touch();
                } else if activity.idle_for() >= idle {
                    tracing::info!(idle_secs = idle.as_secs(), "idle: stopping");
                    let _ = stop_tx.send(true);
                    break;
                }
            }
        });
    }
    {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            let _ = stop_tx.send(true);
        });
    }

    let verifier = Arc::new(Verifier::new(Duration::from_secs(
        args.signed_request_window,
    )));
    let service = NodeService {
        hsm: HsmService::new(node_id, stage.clone(), state.clone(), verifier.clone()),
    };
    let uri_file = args.data_dir.join("grpc-uri");
    // Written whole, then renamed into place: the scheduler polls for this file.
    let tmp = uri_file.with_extension("tmp");
    std::fs::write(&tmp, format!("{uri}\n"))?;
    std::fs::rename(&tmp, &uri_file)?;
    tracing::info!(%uri, "node-host serving");
    let mut stopped = stop_rx.clone();
    let result = server::serve(
        listener,
        tls,
        service,
        activity.clone(),
        verifier,
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        },
    )
    .await;
    let _ = std::fs::remove_file(&uri_file);
    result.context("node server failed")?;
    tracing::info!("node-host stopped");
    Ok(())
}
