//! Following a reorg below the signer's tip: the signer's blocks that left the best chain
//! are removed from its tracker, newest first, down to the fork, before the new branch is
//! fed. Each removal carries a TXOO proof of the removed block for what the signer would
//! have to forget (`ReverseWatches`), so the signer unwinds the channel outputs it saw in
//! it, and the headers below it, which the signer checks against its own.

use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use lightning_signer::bitcoin::consensus::encode::serialize;
use lightning_signer::bitcoin::secp256k1::{All, Keypair, Secp256k1};
use lightning_signer::bitcoin::{Block, BlockHash};
use lightning_signer::txoo::filter::BlockSpendFilter;
use lightning_signer::txoo::proof::ProofType;
use serde_json::json;
use vls_protocol::msgs::{RemoveBlock, RemoveBlockReply, ReverseWatches, ReverseWatchesReply};
use vls_protocol::serde_bolt::LargeOctets;

use super::{Chain, prove};
use crate::signer_link::keys::RemoteKeys;

/// The deepest reorg followed. VLS keeps headers for about this many blocks; a deeper one
/// needs an operator.
const MAX_DEPTH: usize = 100;

/// Removes the signer's blocks from its tip (height and hash) down to the best chain, whose
/// tip is at `best`; returns the fork, the signer's new tip (height and hash).
pub(super) async fn remove_stale(
    chain: &mut Chain,
    keys: &Arc<RemoteKeys>,
    attester: &Keypair,
    secp: &Secp256k1<All>,
    (tip_height, tip): (u32, BlockHash),
    best: u32,
) -> Result<(u32, BlockHash)> {
    // The signer's blocks off the best chain, newest first.
    let mut stale: Vec<Block> = Vec::new();
    let (mut height, mut hash) = (tip_height, tip);
    while chain.hash_at(height, best).await? != Some(hash) {
        if stale.len() == MAX_DEPTH {
            bail!("the reorg below the signer's tip is deeper than {MAX_DEPTH} blocks");
        }
        let block = chain.block_by_hash(json!(hash.to_string())).await?;
        hash = block.header.prev_blockhash;
        stale.push(block);
        height = height
            .checked_sub(1)
            .ok_or_else(|| anyhow!("the signer's chain shares no block with the node's"))?;
    }
    let fork = height;
    // Filter headers cached above the fork are the old branch's.
    chain.headers.truncate(fork as usize + 1);
    let fork_header = chain.block(fork).await?.header;
    // The filter header below each stale block, oldest block first.
    let mut below = Vec::with_capacity(stale.len());
    let mut prev = chain.filter_header(fork).await?;
    for block in stale.iter().rev() {
        below.push(prev);
        prev = BlockSpendFilter::from_block(block).filter_header(&prev);
    }
    for (i, block) in stale.iter().enumerate() {
        let block_height = tip_height - i as u32;
        let prev_filter_header = below[stale.len() - 1 - i];
        let prev_block_header = stale.get(i + 1).map_or(fork_header, |b| b.header);
        let k = keys.clone();
        let watches: ReverseWatchesReply =
            tokio::task::spawn_blocking(move || k.node_call(ReverseWatches {}))
                .await?
                .map_err(|e| anyhow!("ReverseWatches: {e}"))?;
        let proof = prove(
            attester,
            secp,
            &prev_filter_header,
            block,
            block_height,
            &watches.outpoints.0,
            &watches.txids.0,
        )?;
        if matches!(proof.proof, ProofType::Block(_)) {
            // The filter matched a watch the block does not touch: VLS removes only blocks
            // proven by filter, so this reorg cannot be followed here.
            bail!(
                "block {} at height {block_height} cannot be removed from the signer's chain (its filter gives a false positive)",
                block.block_hash()
            );
        }
        let remove = RemoveBlock {
            unspent_proof: Some(LargeOctets(serialize(&proof))),
            prev_block_header,
            prev_filter_header,
        };
        let k = keys.clone();
        let _: RemoveBlockReply = tokio::task::spawn_blocking(move || k.node_call(remove))
            .await?
            .map_err(|e| anyhow!("RemoveBlock at height {block_height}: {e}"))?;
        tracing::info!(
            height = block_height,
            hash = %block.block_hash(),
            "reorg: block removed from the signer's chain"
        );
    }
    Ok((fork, hash))
}
