//! The node and the chain: following the tip, broadcasting, fee rates.

use std::sync::Arc;
use std::time::Duration;

use lightning_block_sync::poll::{ChainPoller, ValidatedBlockHeader};
use lightning_block_sync::{SpvClient, UnboundedCache};
use lightning_signer::bitcoin::consensus::encode::serialize_hex;
use lightning_signer::bitcoin::{Network, Transaction};
use lightning_signer::lightning::chain::chaininterface::ConfirmationTarget;
use serde_json::{Value, json};
use skylight_client::chain::ChainClient;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Node;
use crate::node::ldk::{ChainMonitor, ChannelManager, FeeRates};
use crate::node::sweep::{self, Sweeper};
use crate::node::wallet::Wallet;
use lightning_signer::bitcoin::Block;
use lightning_signer::bitcoin::block::Header;
use lightning_signer::lightning::chain::transaction::TransactionData;
use lightning_signer::lightning::chain::{BestBlock, Listen};

/// The chain's height.
pub async fn height(chain: &ChainClient) -> anyhow::Result<u32> {
    let v = chain.call("getblockcount", &[]).await?;
    v.as_u64()
        .map(|h| h as u32)
        .ok_or_else(|| anyhow::anyhow!("getblockcount answered {v}"))
}

/// Feeds new blocks (and reorgs) to the chain monitor, the channel manager, the sweeper
/// and the wallet until `stop`; after each new tip, sweeps what has come due.
#[allow(clippy::too_many_arguments)]
pub async fn follow(
    chain: Arc<ChainClient>,
    network: Network,
    tip: ValidatedBlockHeader,
    listeners: Listeners,
    handle: Node,
    every: Duration,
    stop: CancellationToken,
) {
    let mut cache = UnboundedCache::new();
    let listener = &listeners;
    let poller = ChainPoller::new(chain, network);
    let mut spv = SpvClient::new(tip, poller, &mut cache, listener);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match spv.poll_best_tip().await {
            Ok((_, new_tip)) => {
                if new_tip {
                    let sweeper = listeners.sweeper.clone();
                    // The sweep may wait on the signer: the chain is not held up for it.
                    tokio::spawn(async move { sweep::sweep_due(&sweeper).await });
                }
                if failing {
                    tracing::info!("the chain answers again");
                    failing = false;
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = ?e, "cannot poll the chain; retrying");
                    failing = true;
                }
            }
        }
        handle.set_height(listeners.manager.current_best_block().height);
    }
}

/// Everything that follows the chain, in the order blocks reach them: channel monitors
/// first (they guard funds), then the channel manager, the sweeper, then the wallet.
pub struct Listeners {
    /// The chain monitor.
    pub monitor: Arc<ChainMonitor>,
    /// The channel manager.
    pub manager: Arc<ChannelManager>,
    /// The output sweeper.
    pub sweeper: Arc<Sweeper>,
    /// The wallet.
    pub wallet: Arc<Wallet>,
}

impl Listen for Listeners {
    fn filtered_block_connected(&self, header: &Header, txdata: &TransactionData, height: u32) {
        self.monitor
            .filtered_block_connected(header, txdata, height);
        self.manager
            .filtered_block_connected(header, txdata, height);
        self.sweeper
            .filtered_block_connected(header, txdata, height);
        self.wallet.filtered_block_connected(header, txdata, height);
    }

    fn block_connected(&self, block: &Block, height: u32) {
        self.monitor.block_connected(block, height);
        self.manager.block_connected(block, height);
        self.sweeper.block_connected(block, height);
        self.wallet.block_connected(block, height);
    }

    fn blocks_disconnected(&self, fork_point: BestBlock) {
        self.monitor.blocks_disconnected(fork_point);
        self.manager.blocks_disconnected(fork_point);
        self.sweeper.blocks_disconnected(fork_point);
        self.wallet.blocks_disconnected(fork_point);
    }
}

/// Submits what LDK asks to broadcast, in order; a package goes together.
pub async fn broadcast(
    chain: Arc<ChainClient>,
    mut queue: mpsc::UnboundedReceiver<Vec<Transaction>>,
) {
    while let Some(package) = queue.recv().await {
        for tx in package {
            let txid = tx.compute_txid();
            match chain
                .call("sendrawtransaction", &[json!(serialize_hex(&tx))])
                .await
            {
                Ok(_) => tracing::info!(%txid, "broadcast"),
                // LDK re-broadcasts what may already be mined or in the mempool.
                Err(e) => tracing::warn!(%txid, error = %e, "broadcast refused"),
            }
        }
    }
}

/// The targets LDK asks for, and the block count bitcoind is asked to estimate for.
const TARGETS: &[(ConfirmationTarget, u32)] = &[
    (ConfirmationTarget::MaximumFeeEstimate, 1),
    (ConfirmationTarget::UrgentOnChainSweep, 2),
    (ConfirmationTarget::NonAnchorChannelFee, 6),
    (ConfirmationTarget::OutputSpendingFee, 12),
    (ConfirmationTarget::AnchorChannelFee, 144),
    (ConfirmationTarget::ChannelCloseMinimum, 144),
];

/// Reads fee estimates into `fees`; targets the chain cannot estimate keep their rate.
pub async fn update_fees(chain: &ChainClient, fees: &FeeRates) {
    for (target, blocks) in TARGETS {
        match chain.call("estimatesmartfee", &[json!(blocks)]).await {
            Ok(v) => {
                if let Some(rate) = sat_per_kw(&v) {
                    fees.set(*target, rate);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "no fee estimate");
                return;
            }
        }
    }
}

/// bitcoind's `feerate` (BTC per 1000 vbytes) in sat per 1000 weight units.
fn sat_per_kw(estimate: &Value) -> Option<u32> {
    let btc_per_kvb = estimate.get("feerate")?.as_f64()?;
    let sat_per_kvb = (btc_per_kvb * 100_000_000.0).round();
    Some((sat_per_kvb / 4.0).round().clamp(0.0, u32::MAX as f64) as u32)
}

/// Refreshes the fee table every minute until `stop`.
pub async fn refresh_fees(chain: Arc<ChainClient>, fees: Arc<FeeRates>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        update_fees(&chain, &fees).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bitcoind_fee_rate_becomes_sat_per_kw() {
        // 0.00001 BTC/kvB = 1000 sat/kvB = 250 sat/kw.
        assert_eq!(
            sat_per_kw(&json!({"feerate": 0.00001, "blocks": 2})),
            Some(250)
        );
        assert_eq!(sat_per_kw(&json!({"feerate": 0.0002})), Some(5000));
        assert_eq!(sat_per_kw(&json!({"errors": ["Insufficient data"]})), None);
    }
}
