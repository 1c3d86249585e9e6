//! The chain, fed to the signer: VLS keeps its own view of the chain (a tracker of headers
//! and of the outputs its channels depend on), learnt only from what the node proves to it.
//!
//! For each block past the signer's tip: `ForwardWatches` (what the signer watches) → a
//! TXOO proof that the block spends or creates those outpoints or not → `AddBlock`. After
//! a reorg below the signer's tip, the signer's blocks off the best chain are removed
//! first, newest first (`RemoveBlock`, with proofs for `ReverseWatches`; see `reorg`). The
//! proof carries an attestation of the block's spend-filter header; with no trusted oracle
//! configured, VLS accepts any attester, so node-host signs with its own key. When the
//! signer has caught up, LDK is told to retry signing it put off.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use lightning_signer::bitcoin::{Block, BlockHash, OutPoint, Txid};
use lightning_signer::bitcoin::consensus::encode::{deserialize, serialize};
use lightning_signer::bitcoin::hash_types::FilterHeader;
use lightning_signer::bitcoin::hashes::Hash;
use lightning_signer::bitcoin::secp256k1::{Keypair, Secp256k1};
use lightning_signer::txoo::Attestation;
use lightning_signer::txoo::filter::BlockSpendFilter;
use lightning_signer::txoo::proof::TxoProof;
use lightning_signer::txoo::util::sign_attestation;
use serde_json::json;
use skylight_client::chain::ChainClient;
use tokio_util::sync::CancellationToken;
use vls_protocol::msgs::{
    AddBlock, AddBlockReply, DebugTxoProof, ForwardWatches, ForwardWatchesReply, TipInfo,
    TipInfoReply,
};

mod reorg;

use crate::node::ldk::{ChainMonitor, ChannelManager};
use crate::signer_link::keys::RemoteKeys;
use crate::signer_link::stage::Stage;

/// Blocks and their spend-filter headers, from genesis, as far as fetched.
struct Chain {
    client: Arc<ChainClient>,
    /// `headers[h]` is the filter header after block `h`; before block 1 it is all zeros.
    headers: Vec<FilterHeader>,
    /// The block the signer's chain was last brought to.
    signer_at: Option<BlockHash>,
}

impl Chain {
    async fn block(&self, height: u32) -> Result<Block> {
        let hash = self.client.call("getblockhash", &[json!(height)]).await?;
        self.block_by_hash(hash).await
    }

    /// A block by its hash, on the best chain or not (a block a reorg left behind).
    async fn block_by_hash(&self, hash: serde_json::Value) -> Result<Block> {
        let hex = self
            .client
            .call("getblock", &[hash, json!(0)])
            .await?
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("getblock answered no hex"))?;
        Ok(deserialize(&hex::decode(hex)?)?)
    }

    /// The best chain's block at `height`, if the chain, whose tip is at `best`, is that
    /// high.
    async fn hash_at(&self, height: u32, best: u32) -> Result<Option<BlockHash>> {
        if height > best {
            return Ok(None);
        }
        let hash = self.client.call("getblockhash", &[json!(height)]).await?;
        parse_hash(&hash).map(Some)
    }

    /// The best chain's tip.
    async fn best_hash(&self) -> Result<BlockHash> {
        parse_hash(&self.client.call("getbestblockhash", &[]).await?)
    }

    /// The filter header after block `height`.
    async fn filter_header(&mut self, height: u32) -> Result<FilterHeader> {
        if self.headers.is_empty() {
            self.headers.push(FilterHeader::all_zeros());
        }
        while self.headers.len() <= height as usize {
            let h = self.headers.len() as u32;
            let block = self.block(h).await?;
            let prev = self.headers[h as usize - 1];
            self.headers
                .push(BlockSpendFilter::from_block(&block).filter_header(&prev));
        }
        Ok(self.headers[height as usize])
    }
}

/// Keeps the signer's chain at the node's, while a signer is attached, until `stop`.
pub async fn feed(
    client: Arc<ChainClient>,
    keys: Arc<RemoteKeys>,
    stage: Arc<Stage>,
    channel_manager: Arc<ChannelManager>,
    chain_monitor: Arc<ChainMonitor>,
    stop: CancellationToken,
) {
    let secp = Secp256k1::new();
    let attester = Keypair::new(
        &secp,
        &mut lightning_signer::bitcoin::secp256k1::rand::thread_rng(),
    );
    let mut chain = Chain {
        client,
        headers: Vec::new(),
        signer_at: None,
    };
    let mut failing = false;
    let mut signers = stage.watch_signers();
    loop {
        if !signers.attached(&stop).await {
            return;
        }
        match catch_up(&mut chain, &keys, &attester, &secp).await {
            Ok(0) => {}
            Ok(blocks) => {
                tracing::info!(blocks, "the signer's chain caught up");
                // Signing LDK put off for want of the signer's chain can go ahead. Not
                // awaited: it takes LDK's locks, which a thread waiting for a signature may
                // hold until the next block reaches the signer.
                let (cm, mon) = (channel_manager.clone(), chain_monitor.clone());
                tokio::task::spawn_blocking(move || {
                    cm.signer_unblocked(None);
                    mon.signer_unblocked(None);
                });
                failing = false;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %format!("{e:#}"), "cannot feed the chain to the signer; retrying");
                    failing = true;
                }
            }
        }
        // New blocks are looked for twice a second; a signer attaching is fed at once.
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = signers.changed() => {}
        }
    }
}

/// Feeds every block from the signer's tip to the node's; returns how many.
async fn catch_up(
    chain: &mut Chain,
    keys: &Arc<RemoteKeys>,
    attester: &Keypair,
    secp: &Secp256k1<lightning_signer::bitcoin::secp256k1::All>,
) -> Result<u32> {
    // The chain's tip, not LDK's: LDK may be waiting (holding its locks) for a signature
    // that the signer gives only once it has seen the blocks. Fed up to there already: no
    // need to ask the signer (a round trip on every poll), one chain call is enough. The
    // tracker lives in the signer state node-host keeps, so a signer that attaches later
    // has it too.
    if chain.signer_at == Some(chain.best_hash().await?) {
        return Ok(0);
    }
    chain.signer_at = None;
    let target = super::chain::height(&chain.client).await?;
    let k = keys.clone();
    let tip: TipInfoReply = tokio::task::spawn_blocking(move || k.node_call(TipInfo {}))
        .await?
        .map_err(|e| anyhow!("TipInfo: {e}"))?;
    // A reorg below the signer's tip: the signer's blocks off the best chain go first.
    let (from, mut fed_to) = if chain.hash_at(tip.height, target).await? == Some(tip.block_hash)
    {
        (tip.height, tip.block_hash)
    } else {
        let stale = (tip.height, tip.block_hash);
        reorg::remove_stale(chain, keys, attester, secp, stale, target).await?
    };
    let mut fed = 0;
    for height in from + 1..=target {
        let block = chain.block(height).await?;
        fed_to = block.block_hash();
        let prev = chain.filter_header(height - 1).await?;
        let k = keys.clone();
        let watches: ForwardWatchesReply =
            tokio::task::spawn_blocking(move || k.node_call(ForwardWatches {}))
                .await?
                .map_err(|e| anyhow!("ForwardWatches: {e}"))?;
        let filter_header = BlockSpendFilter::from_block(&block).filter_header(&prev);
        if chain.headers.len() == height as usize {
            chain.headers.push(filter_header);
        }
        let proof = prove(
            attester,
            secp,
            &prev,
            &block,
            height,
            &watches.outpoints.0,
            &watches.txids.0,
        )?;
        let add = AddBlock {
            header: serialize(&block.header).into(),
            unspent_proof: Some(DebugTxoProof(proof)),
        };
        let k = keys.clone();
        let _: AddBlockReply = tokio::task::spawn_blocking(move || k.node_call(add))
            .await?
            .map_err(|e| anyhow!("AddBlock at height {height}: {e}"))
            .context("the signer refused a block")?;
        fed += 1;
    }
    chain.signer_at = Some(fed_to);
    Ok(fed)
}

fn parse_hash(v: &serde_json::Value) -> Result<BlockHash> {
    v.as_str()
        .ok_or_else(|| anyhow!("the chain answered {v} for a block hash"))?
        .parse()
        .map_err(|e| anyhow!("the chain answered {v} for a block hash: {e}"))
}

/// A TXOO proof of `block` at `height` (after filter header `prev`) for the watched
/// `outpoints` and `txids`, attested by node-host's own key.
fn prove(
    attester: &Keypair,
    secp: &Secp256k1<lightning_signer::bitcoin::secp256k1::All>,
    prev: &FilterHeader,
    block: &Block,
    height: u32,
    outpoints: &[OutPoint],
    txids: &[Txid],
) -> Result<TxoProof> {
    let filter_header = BlockSpendFilter::from_block(block).filter_header(prev);
    let attestation = sign_attestation(
        Attestation {
            block_hash: block.block_hash(),
            block_height: height,
            filter_header,
            time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs(),
        },
        attester,
        secp,
    );
    Ok(TxoProof::prove(
        vec![(attester.public_key(), attestation)],
        prev,
        block,
        height,
        outpoints,
        txids,
    ))
}
