//! The node and the chain: following the tip, broadcasting, fee rates.

use std::sync::Arc;
use std::time::Duration;

use lightning_block_sync::poll::{ChainPoller, ValidatedBlockHeader};
use lightning_block_sync::{SpvClient, UnboundedCache};
use lightning_signer::bitcoin::consensus::encode::serialize_hex;
use lightning_signer::bitcoin::{Network, Transaction};
use lightning_signer::lightning::chain::chaininterface::ConfirmationTarget;
use serde_json::{Value, json};
use skylight_client::chain::{ChainClient, ChainError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Node;
use super::chain_health::ChainStatus;
use crate::node::ldk::{self, ChainMonitor, ChannelManager, FeeRates};
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
            }
            // Said at once; the health watch says when it answers again.
            Err(e) => handle.set_chain_status(ChainStatus::Down(format!(
                "cannot poll the chain for its tip: {:?}",
                e.into_inner()
            ))),
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

/// How long a broadcast waits before trying again a chain that did not answer.
const BROADCAST_RETRY: Duration = Duration::from_secs(2);

/// Submits what LDK asks to broadcast, in order; a package goes together. A chain that does
/// not answer is tried again until it does (a funding or a withdrawal would be lost
/// otherwise: LDK rebroadcasts only what its monitors claim); a refusal is final.
pub async fn broadcast(
    chain: Arc<ChainClient>,
    mut queue: mpsc::UnboundedReceiver<Vec<Transaction>>,
) {
    while let Some(package) = queue.recv().await {
        for tx in package {
            let txid = tx.compute_txid();
            let hex = serialize_hex(&tx);
            let mut said = false;
            loop {
                match chain.call("sendrawtransaction", &[json!(hex)]).await {
                    Ok(_) => {
                        tracing::info!(%txid, "broadcast");
                        break;
                    }
                    // LDK re-broadcasts what may already be mined or in the mempool.
                    Err(e @ ChainError::Refused { .. }) => {
                        tracing::warn!(%txid, error = %e, "broadcast refused");
                        break;
                    }
                    Err(e) => {
                        if !said {
                            tracing::warn!(%txid, error = %e, "cannot broadcast yet; retrying");
                            said = true;
                        }
                        tokio::time::sleep(BROADCAST_RETRY).await;
                    }
                }
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

/// Reads fee estimates into `fees`. A target the chain has no estimate for (a young
/// regtest, a quiet signet, a bitcoind that has just started) gets the floor: the larger of
/// LDK's 253 sat/kW (1 sat/vB) and the chain's `mempoolminfee`, below which nothing relays;
/// no estimate is taken below that floor either. A chain that does not answer leaves the
/// table as it was.
pub async fn update_fees(chain: &ChainClient, fees: &FeeRates) {
    let floor = match chain.call("getmempoolinfo", &[]).await {
        Ok(v) => v
            .get("mempoolminfee")
            .and_then(|f| sat_per_kw(&json!({ "feerate": f })))
            .unwrap_or(0)
            .max(ldk::FEE_FLOOR),
        Err(e) => {
            tracing::debug!(error = %e, "no mempool minimum fee");
            ldk::FEE_FLOOR
        }
    };
    for (target, blocks) in TARGETS {
        match chain.call("estimatesmartfee", &[json!(blocks)]).await {
            Ok(v) => fees.set(*target, rate(&v, floor)),
            Err(e) => {
                tracing::debug!(error = %e, "no fee estimate");
                return;
            }
        }
    }
}

/// The rate of one `estimatesmartfee` answer, never below `floor`.
fn rate(estimate: &Value, floor: u32) -> u32 {
    sat_per_kw(estimate).unwrap_or(floor).max(floor)
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

    #[test]
    fn a_target_without_an_estimate_gets_the_floor_and_no_estimate_goes_below_it() {
        let none = json!({"errors": ["Insufficient data or no feerate found"], "blocks": 0});
        assert_eq!(rate(&none, 253), 253);
        assert_eq!(rate(&none, 500), 500);
        assert_eq!(rate(&json!({"feerate": 0.00001}), 500), 500);
        assert_eq!(rate(&json!({"feerate": 0.0002}), 500), 5000);
    }
}
