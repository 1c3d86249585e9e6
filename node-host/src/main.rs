//! `node-host`: one tenant's node, started by the scheduler.
//!
//! It serves the node server at once (`greenlight.Node` with the signer link, and `cln.Node`,
//! over mutual TLS trusting only the tenant's CA); the LDK node starts when the tenant's
//! signer first attaches, and runs until node-host stops (SIGTERM, or idle).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use lightning_signer::bitcoin::Network;
use lightning_signer::bitcoin::secp256k1::PublicKey;
use skylight_devchain::client::ChainClient;
use skylight_devchain::rpc::Credentials;
use skylight_node_host::activity::Activity;
use skylight_node_host::api::ClnService;
use skylight_node_host::hsm_service::HsmService;
use skylight_node_host::invoices::Invoices;
use skylight_node_host::node::{self, NodeHandle, Settings};
use skylight_node_host::node_service::NodeService;
use skylight_node_host::payments::Payments;
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
    /// Address where Lightning peers connect (port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:0")]
    p2p_listen: SocketAddr,
    /// Seconds a node call that needs the signer (an invoice, say) waits for one to attach.
    #[arg(long, default_value_t = 30)]
    signer_wait: u64,
    /// Seconds a signing request waits for the signer's answer.
    #[arg(long, default_value_t = 120)]
    signer_deadline: u64,
    /// Milliseconds between polls of the chain for a new tip.
    #[arg(long, default_value_t = 1000)]
    chain_poll_ms: u64,
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
        // The scheduler sends node-host's output to a log file: no colour codes there.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    // Two runtimes. LDK's threads block on the signer, and LDK's calls block on locks those
    // threads hold; the node server, which carries the signer's answers back, must never
    // wait behind them, so it has its own runtime (ldk-vls.md §6.3).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("ldk")
        .enable_all()
        .build()
        .expect("cannot start the async runtime");
    let io = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("node-io")
        .enable_all()
        .build()
        .expect("cannot start the async runtime");
    let result = runtime.block_on(run(args, io.handle().clone()));
    // A blocking task may still wait on a signer call that was staged before the stop.
    io.shutdown_timeout(Duration::from_secs(2));
    runtime.shutdown_timeout(Duration::from_secs(2));
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// How long a stopping node-host keeps serving its signer while the Lightning node winds
/// down.
const NODE_STOP_GRACE: Duration = Duration::from_secs(8);

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The chain client, from `--bitcoind-rpc` and its cookie.
fn chain_client(args: &Args) -> Result<ChainClient> {
    let url = args
        .bitcoind_rpc
        .as_deref()
        .context("--bitcoind-rpc is required: the node follows the chain through it")?;
    let credentials = match &args.bitcoind_cookie {
        Some(path) => Credentials::load(path)
            .with_context(|| format!("cannot read the cookie {}", path.display()))?
            .base64(),
        None => String::new(),
    };
    ChainClient::new(url, &credentials)
}

async fn run(args: Args, io: tokio::runtime::Handle) -> Result<()> {
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
    // Bound here, served on the I/O runtime.
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let uri = format!("https://localhost:{}", addr.port());

    let network: Network = args
        .network
        .parse()
        .with_context(|| format!("unknown network {:?}", args.network))?;
    let chain = Arc::new(chain_client(&args)?);
    let invoices = Arc::new(
        Invoices::open(&args.data_dir.join("invoices.redb")).context("cannot open the invoices")?,
    );
    let payments = Arc::new(
        Payments::open(&args.data_dir.join("payments.redb")).context("cannot open the payments")?,
    );
    let handle = NodeHandle::new(invoices, payments);

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
    let cln = ClnService {
        node_id,
        network,
        node: handle.clone(),
        stage: stage.clone(),
        signer_wait: Duration::from_secs(args.signer_wait),
        ldk: tokio::runtime::Handle::current(),
    };
    let settings = Settings {
        network,
        node_id: PublicKey::from_slice(&node_id).context("--node-id is not a public key")?,
        data_dir: args.data_dir.clone(),
        chain,
        p2p_listen: args.p2p_listen,
        signer_deadline: Duration::from_secs(args.signer_deadline),
        chain_poll: Duration::from_millis(args.chain_poll_ms),
        io: io.clone(),
    };
    let (node_done_tx, node_done) = tokio::sync::watch::channel(false);
    let lightning = {
        let (stage, handle, stop) = (stage.clone(), handle.clone(), stop_rx.clone());
        let stop_tx = stop_tx.clone();
        let node_done_tx = node_done_tx.clone();
        tokio::spawn(async move {
            let result = node::run(settings, stage, handle, stop).await;
            node_done_tx.send_replace(true);
            if let Err(e) = &result {
                tracing::error!(error = %format!("{e:#}"), "the Lightning node failed: stopping");
                let _ = stop_tx.send(true);
            }
            result
        })
    };
    let uri_file = args.data_dir.join("grpc-uri");
    // Written whole, then renamed into place: the scheduler polls for this file.
    let tmp = uri_file.with_extension("tmp");
    std::fs::write(&tmp, format!("{uri}\n"))?;
    std::fs::rename(&tmp, &uri_file)?;
    tracing::info!(%uri, "node-host serving");
    let mut stopped = stop_rx.clone();
    let shutdown = {
        let stage = stage.clone();
        let mut node_done = node_done.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
            // The signer stays reachable while the Lightning node winds down (it may be
            // finishing a commitment exchange); a bounded wait, then the stage closes,
            // which ends the signers' streams (the server waits for open calls) and
            // releases any LDK thread still waiting for a signer.
            let _ = tokio::time::timeout(NODE_STOP_GRACE, node_done.wait_for(|d| *d)).await;
            stage.close();
        }
    };
    let activity_ = activity.clone();
    let serving = io.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        server::serve(listener, tls, service, cln, activity_, verifier, shutdown)
            .await
            .map_err(anyhow::Error::from)
    });
    let result = serving
        .await
        .unwrap_or_else(|e| Err(anyhow::anyhow!("the node server crashed: {e}")));
    let _ = std::fs::remove_file(&uri_file);
    let _ = stop_tx.send(true);
    stage.close(); // Also when the server failed rather than stopped.
    let node_result = lightning.await;
    result.context("node server failed")?;
    match node_result {
        Ok(r) => r?,
        Err(e) => anyhow::bail!("the Lightning node crashed: {e}"),
    }
    tracing::info!("node-host stopped");
    Ok(())
}
