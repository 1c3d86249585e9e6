//! How the chain source stands, as node-host reports it (Getinfo's warnings): watched for
//! the process's whole life, from before the Lightning node runs, so a chain that is down
//! or behind is said plainly rather than found in a failing call. The node starts only once
//! the chain answers on the node's own network.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use skylight_client::chain::ChainClient;
use tokio_util::sync::CancellationToken;

use super::Node;

/// How often the chain is asked how it stands.
pub const HEALTH_EVERY: Duration = Duration::from_secs(5);

/// The chain source as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainStatus {
    /// Not asked yet.
    Unknown,
    /// It answers, on the node's network.
    Answers {
        /// Its height.
        height: u32,
        /// Why it is not at the network's tip, if it is not (still downloading, say).
        behind: Option<String>,
    },
    /// It does not answer.
    Down(String),
    /// It answers for another network: the node never follows it.
    WrongNetwork(String),
}

impl Node {
    /// The chain source as last seen.
    pub fn chain_status(&self) -> ChainStatus {
        self.chain.borrow().clone()
    }

    /// Records how the chain stands, saying so in the log when that changes.
    pub(super) fn set_chain_status(&self, now: ChainStatus) {
        let before = self.chain.send_replace(now.clone());
        let was_down = matches!(before, ChainStatus::Down(_));
        match &now {
            ChainStatus::Down(why) if before != now => {
                tracing::warn!(error = %why, "the chain source does not answer; retrying")
            }
            ChainStatus::WrongNetwork(why) if before != now => tracing::error!("{why}"),
            ChainStatus::Answers { behind: Some(b), .. } if before != now => {
                tracing::warn!("{b}")
            }
            ChainStatus::Answers { height, .. } if was_down => {
                tracing::info!(height, "the chain source answers again")
            }
            _ => {}
        }
    }
}

/// Asks the chain how it stands every [`HEALTH_EVERY`] until `stop`.
pub async fn watch(chain: Arc<ChainClient>, node: Node, stop: CancellationToken) {
    loop {
        record(&node, status(&chain, &node).await);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(HEALTH_EVERY) => {}
        }
    }
}

fn record(node: &Node, status: ChainStatus) {
    if let ChainStatus::Answers { height, .. } = status
        && node.current().is_none()
    {
        // Once the node runs, its height is its own (see `chain::follow`).
        node.set_height(height);
    }
    node.set_chain_status(status);
}

async fn status(chain: &ChainClient, node: &Node) -> ChainStatus {
    match chain.info().await {
        Ok(info) if info.network != node.network => ChainStatus::WrongNetwork(wrong_network(
            chain,
            info.network,
            node.network,
        )),
        Ok(info) => ChainStatus::Answers {
            height: info.blocks,
            behind: info.behind(),
        },
        Err(e) => ChainStatus::Down(format!("{e:#}")),
    }
}

fn wrong_network(
    chain: &ChainClient,
    found: lightning_signer::bitcoin::Network,
    wanted: lightning_signer::bitcoin::Network,
) -> String {
    format!(
        "the chain at {} is on {found}, but this node is on {wanted}",
        chain.url
    )
}

/// Refuses a chain that answers for another network than the node's; one that does not
/// answer is not refused here (the node waits for it in [`ready`]).
pub async fn check_network(chain: &ChainClient, node: &Node) -> Result<()> {
    match status(chain, node).await {
        ChainStatus::WrongNetwork(why) => bail!("{why}"),
        other => {
            record(node, other);
            Ok(())
        }
    }
}

/// Waits until the chain answers on the node's network; `false` if `stop` came first. A
/// chain on another network is an error: the node must never follow it.
pub async fn ready(chain: &ChainClient, node: &Node, stop: &CancellationToken) -> Result<bool> {
    let mut waited = false;
    loop {
        match status(chain, node).await {
            ChainStatus::Answers { .. } => return Ok(true),
            ChainStatus::WrongNetwork(why) => bail!("{why}"),
            ChainStatus::Down(why) => {
                if !waited {
                    tracing::warn!(error = %why, "the node waits for the chain source");
                    waited = true;
                }
            }
            ChainStatus::Unknown => {}
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(false),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
