//! The chain node-hosts follow: the embedded regtest chain, or the operator's bitcoind.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use skylight_devchain::{DevChain, rpc};

use crate::config::{ChainSource, Config};
use crate::datadir::Paths;
use crate::shutdown::Shutdown;

/// The chain in use.
pub struct Chain {
    /// JSON-RPC URL node-hosts use.
    pub url: String,
    /// The cookie file with its credentials (embedded chain).
    pub cookie: Option<PathBuf>,
    embedded: Option<(Arc<DevChain>, tokio::task::JoinHandle<()>)>,
}

impl Chain {
    /// Starts the embedded chain when configured; an external bitcoind is only recorded.
    pub async fn start(config: &Config, paths: &Paths, shutdown: &Shutdown) -> Result<Chain> {
        match &config.chain {
            ChainSource::Bitcoind { url } => Ok(Chain {
                url: url.clone(),
                cookie: None,
                embedded: None,
            }),
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
                let stop = shutdown.clone();
                let task = tokio::spawn(rpc::serve(
                    chain.clone(),
                    listener,
                    credentials,
                    async move { stop.wait().await },
                ));
                Ok(Chain {
                    url: endpoint.url,
                    cookie: Some(endpoint.cookie),
                    embedded: Some((chain, task)),
                })
            }
        }
    }

    /// Waits for the embedded chain's server to stop and makes its state durable.
    pub async fn stop(self) -> Result<()> {
        if let Some((chain, task)) = self.embedded {
            let _ = task.await;
            if let Some(cookie) = &self.cookie
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
