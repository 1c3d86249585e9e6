//! The chain node-hosts follow: the embedded regtest chain, or the operator's bitcoind.
//! Either way it is checked at start (it must be on the scheduler's network) and watched
//! while the scheduler runs, so an operator reads in the log that it is down or behind.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bitcoin::Network;
use skylight_client::chain::{ChainClient, ChainRpc, RpcAuth};
use skylight_devchain::{DevChain, rpc};
use tokio::sync::oneshot;

use crate::config::{ChainSource, Config};
use crate::datadir::Paths;
use crate::shutdown::Shutdown;

/// How often the scheduler asks the chain how it stands.
const WATCH_EVERY: Duration = Duration::from_secs(10);

/// The chain in use.
pub struct Chain {
    /// Where node-hosts reach it and how they authenticate.
    pub rpc: ChainRpc,
    embedded: Option<Embedded>,
}

struct Embedded {
    chain: Arc<DevChain>,
    task: tokio::task::JoinHandle<()>,
    stop: oneshot::Sender<()>,
}

impl Chain {
    /// Starts the embedded chain when configured; an external bitcoind is only recorded.
    pub async fn start(config: &Config, paths: &Paths) -> Result<Chain> {
        match &config.chain {
            ChainSource::Bitcoind {
                rpc,
                password_on_command_line,
            } => {
                if *password_on_command_line {
                    tracing::warn!(
                        "the bitcoind RPC password is on the scheduler's command line, where every \
                         local user can read it: give the URL in SKYLIGHT_BITCOIND_RPC, or use \
                         --bitcoind-rpc-cookie or --bitcoind-rpc-user"
                    );
                }
                Ok(Chain {
                    rpc: rpc.clone(),
                    embedded: None,
                })
            }
            ChainSource::Embedded {
                listen,
                initial_blocks,
            } => {
                let dir = paths.chain_dir();
                let chain_config = skylight_devchain::Config {
                    initial_blocks: *initial_blocks,
                    ..Default::default()
                };
                let open_dir = dir.clone();
                let chain = Arc::new(
                    tokio::task::spawn_blocking(move || DevChain::open(&open_dir, chain_config))
                        .await?
                        .context("cannot open the embedded chain")?,
                );
                let (listener, endpoint) = rpc::bind(&dir, *listen)
                    .await
                    .with_context(|| format!("cannot listen for chain RPC on {listen}"))?;
                let credentials = rpc::Credentials::load(&endpoint.cookie)?;
                // The chain outlives the node-hosts: it stops only once they have.
                let (stop, stopped) = oneshot::channel();
                let task = tokio::spawn(rpc::serve(
                    chain.clone(),
                    listener,
                    credentials,
                    async move {
                        let _ = stopped.await;
                    },
                ));
                Ok(Chain {
                    rpc: ChainRpc::new(
                        &endpoint.url,
                        Network::Regtest,
                        RpcAuth::Cookie(endpoint.cookie),
                    )?,
                    embedded: Some(Embedded { chain, task, stop }),
                })
            }
        }
    }

    /// Whether this is the embedded chain.
    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// Refuses a chain of another network than `network`. A chain that cannot be reached
    /// is not refused (bitcoind may start after the scheduler): node-hosts wait for it,
    /// check it themselves, and [`Chain::watch`] checks it when it answers.
    pub async fn check(&self, network: Network) -> Result<()> {
        let client = ChainClient::connect(&self.rpc);
        match client.info().await {
            Ok(info) => {
                wrong_network(&self.rpc, info.network, network)?;
                metrics::gauge!(crate::metrics::CHAIN_HEIGHT).set(f64::from(info.blocks));
                if let Some(behind) = info.behind() {
                    tracing::warn!(chain = %self.rpc, "{behind}; node-hosts wait for it");
                }
                Ok(())
            }
            Err(e) => {
                tracing::warn!(
                    chain = %self.rpc,
                    error = %format!("{e:#}"),
                    "the chain cannot be reached yet; node-hosts wait for it"
                );
                Ok(())
            }
        }
    }

    /// Asks the chain how it stands every `WATCH_EVERY` until `shutdown`, saying in the
    /// log when it goes down, falls behind, or answers again. A chain found on another
    /// network stops the scheduler.
    pub fn watch(&self, network: Network, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
        let rpc = self.rpc.clone();
        tokio::spawn(async move {
            let client = ChainClient::connect(&rpc);
            let mut said = String::new();
            loop {
                tokio::select! {
                    _ = shutdown.wait() => return,
                    _ = tokio::time::sleep(WATCH_EVERY) => {}
                }
                let now = match client.info().await {
                    Ok(info) => {
                        if let Err(e) = wrong_network(&rpc, info.network, network) {
                            tracing::error!("{e}: stopping");
                            shutdown.fail();
                            return;
                        }
                        metrics::gauge!(crate::metrics::CHAIN_HEIGHT).set(f64::from(info.blocks));
                        info.behind().unwrap_or_default()
                    }
                    Err(e) => format!("the chain cannot be reached: {e:#}"),
                };
                if now != said {
                    if now.is_empty() {
                        tracing::info!(chain = %rpc, "the chain answers and is in sync again");
                    } else {
                        tracing::warn!(chain = %rpc, "{now}");
                    }
                    said = now;
                }
            }
        })
    }

    /// After the node-hosts have stopped: stops the embedded chain's server and makes its
    /// state durable.
    pub async fn stop(self) -> Result<()> {
        if let Some(Embedded { chain, task, stop }) = self.embedded {
            let _ = stop.send(());
            let _ = task.await;
            if let RpcAuth::Cookie(cookie) = &self.rpc.auth
                && let Some(dir) = cookie.parent()
            {
                let _ = std::fs::remove_file(rpc::Endpoint::files(dir).0);
            }
            tokio::task::spawn_blocking(move || chain.flush())
                .await?
                .context("cannot flush the embedded chain")?;
        }
        Ok(())
    }
}

fn wrong_network(rpc: &ChainRpc, found: Network, wanted: Network) -> Result<()> {
    if found != wanted {
        bail!(
            "the chain at {} is on {found}, but this scheduler runs --network {wanted}: point \
             --bitcoind-rpc at a {wanted} bitcoind, or run with --network {found}",
            rpc.url()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_of_another_network_is_refused_naming_both() {
        let rpc = ChainRpc::parse("http://h:1", Network::Signet).unwrap();
        let err = wrong_network(&rpc, Network::Regtest, Network::Signet)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("on regtest") && err.contains("--network signet"),
            "{err}"
        );
        assert!(wrong_network(&rpc, Network::Signet, Network::Signet).is_ok());
    }
}
