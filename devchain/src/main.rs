//! `devchain`: run Skylight's regtest chain on its own, or drive a running one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use skylight_devchain::ops::{self, ChainCommand};
use skylight_devchain::{Config, DevChain, rpc};

#[derive(Parser)]
#[command(
    name = "devchain",
    version,
    about = "A regtest chain that speaks bitcoind's JSON-RPC"
)]
struct Cli {
    /// Chain directory (blocks, mempool, RPC cookie).
    #[arg(long, global = true, env = "SKYLIGHT_CHAIN_DIR", default_value_os_t = skylight_client::files::skylight_home("devchain"))]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the chain's RPC.
    Run {
        /// Address for JSON-RPC (bitcoind's regtest port by default).
        #[arg(long, default_value = "127.0.0.1:18443")]
        listen: SocketAddr,
        /// Blocks mined to the faucet on a new chain, so it can pay at once.
        #[arg(long, default_value_t = 101)]
        initial_blocks: u32,
        /// What estimatesmartfee answers, sat/vB.
        #[arg(long, default_value_t = 2)]
        feerate: u64,
        /// A user accepted beside the cookie (bitcoind's `rpcuser`); its password comes
        /// from `DEVCHAIN_RPC_PASSWORD` or `--rpc-password-file`, never the command line.
        #[arg(long)]
        rpc_user: Option<String>,
        /// A file holding the `--rpc-user`'s password.
        #[arg(long)]
        rpc_password_file: Option<PathBuf>,
    },
    #[command(flatten)]
    Operate(ChainCommand),
}

/// Where `run` reads the `--rpc-user`'s password from, if no file is given.
const PASSWORD_ENV: &str = "DEVCHAIN_RPC_PASSWORD";

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("cannot start the async runtime");
    if let Err(e) = runtime.block_on(run(cli)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run {
            listen,
            initial_blocks,
            feerate,
            rpc_user,
            rpc_password_file,
        } => {
            let config = Config {
                initial_blocks,
                feerate_sat_per_kvb: feerate * 1000,
                ..Config::default()
            };
            let dir = cli.data_dir.clone();
            let chain =
                Arc::new(tokio::task::spawn_blocking(move || DevChain::open(&dir, config)).await??);
            let (listener, endpoint) = rpc::bind(&cli.data_dir, listen).await?;
            println!(
                "devchain RPC {} (cookie {})",
                endpoint.url,
                endpoint.cookie.display()
            );
            let mut credentials = rpc::Credentials::load(&endpoint.cookie)?;
            if let Some(user) = rpc_user {
                let password = match rpc_password_file {
                    Some(f) => std::fs::read_to_string(&f)
                        .with_context(|| format!("cannot read {}", f.display()))?
                        .trim_end_matches(['\r', '\n'])
                        .to_string(),
                    None => std::env::var(PASSWORD_ENV).with_context(|| {
                        format!(
                            "--rpc-user needs its password in {PASSWORD_ENV} or --rpc-password-file"
                        )
                    })?,
                };
                credentials = credentials.with_user(&user, &password);
            }
            let shutdown = async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("SIGTERM handler");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            };
            rpc::serve(chain.clone(), listener, credentials, shutdown).await;
            let _ = std::fs::remove_file(rpc::Endpoint::files(&cli.data_dir).0);
            chain.flush().context("cannot flush the chain")?;
            Ok(())
        }
        Command::Operate(command) => {
            ops::operate(&skylight_devchain::client::for_dir(&cli.data_dir)?, command).await
        }
    }
}
