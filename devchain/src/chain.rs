//! The block tree, the active chain and its UTXO set.

use std::collections::HashMap;

use bitcoin::block::Header;
use bitcoin::pow::Work;
use bitcoin::{Block, BlockHash, Network, OutPoint, Transaction, TxOut, Txid};

/// An unspent output and where it was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utxo {
    /// The output.
    pub txout: TxOut,
    /// Height of the block that created it.
    pub height: u32,
    /// Whether it is a coinbase output (subject to maturity).
    pub coinbase: bool,
}

/// A block we know, active or not.
#[derive(Debug, Clone)]
pub struct BlockEntry {
    /// The block.
    pub block: Block,
    /// Its height.
    pub height: u32,
    /// Total work of the chain ending here.
    pub chainwork: Work,
    /// Marked invalid by `invalidateblock`.
    pub invalid: bool,
}

/// Where a confirmed transaction is.
#[derive(Debug, Clone, Copy)]
pub struct TxLocation {
    /// The block.
    pub block: BlockHash,
    /// Index in the block.
    pub index: usize,
}

/// The chain state: every block known, the active chain, and the UTXO set at its tip.
pub struct Chain {
    index: HashMap<BlockHash, BlockEntry>,
    active: Vec<BlockHash>,
    utxos: HashMap<OutPoint, Utxo>,
    /// The outputs each active block spent, to restore them when it is disconnected.
    undo: HashMap<BlockHash, Vec<(OutPoint, Utxo)>>,
    txs: HashMap<Txid, TxLocation>,
}

impl Chain {
    /// A chain holding only the regtest genesis block. Its coinbase, as in bitcoind, is not
    /// spendable and so not in the UTXO set.
    pub fn new() -> Self {
        let genesis = bitcoin::constants::genesis_block(Network::Regtest);
        let hash = genesis.block_hash();
        let mut chain = Chain {
            index: HashMap::new(),
            active: vec![hash],
            utxos: HashMap::new(),
            undo: HashMap::new(),
            txs: HashMap::new(),
        };
        chain.txs.insert(
            genesis.txdata[0].compute_txid(),
            TxLocation {
                block: hash,
                index: 0,
            },
        );
        chain.index.insert(
            hash,
            BlockEntry {
                chainwork: genesis.header.work(),
                block: genesis,
                height: 0,
                invalid: false,
            },
        );
        chain
    }

    /// The tip's hash and height.
    pub fn tip(&self) -> (BlockHash, u32) {
        (*self.active.last().expect("genesis"), self.height())
    }

    /// The tip's height.
    pub fn height(&self) -> u32 {
        (self.active.len() - 1) as u32
    }

    /// The tip's entry.
    pub fn tip_entry(&self) -> &BlockEntry {
        &self.index[self.active.last().expect("genesis")]
    }

    /// The active block at `height`.
    pub fn hash_at(&self, height: u32) -> Option<BlockHash> {
        self.active.get(height as usize).copied()
    }

    /// Any known block.
    pub fn entry(&self, hash: &BlockHash) -> Option<&BlockEntry> {
        self.index.get(hash)
    }

    /// Whether `hash` is on the active chain.
    pub fn is_active(&self, hash: &BlockHash) -> bool {
        self.index
            .get(hash)
            .is_some_and(|e| self.hash_at(e.height) == Some(*hash))
    }

    /// The median time of the 11 blocks ending at `height` (BIP113).
    pub fn median_time_past(&self, height: u32) -> u32 {
        let start = height.saturating_sub(10);
        let mut times: Vec<u32> = (start..=height)
            .filter_map(|h| self.hash_at(h))
            .map(|h| self.index[&h].block.header.time)
            .collect();
        times.sort_unstable();
        times[times.len() / 2]
    }

    /// An unspent output of the active chain.
    pub fn utxo(&self, outpoint: &OutPoint) -> Option<&Utxo> {
        self.utxos.get(outpoint)
    }

    /// Every unspent output (for the faucet's own coins).
    pub fn utxos(&self) -> impl Iterator<Item = (&OutPoint, &Utxo)> {
        self.utxos.iter()
    }

    /// Where a transaction of the active chain is.
    pub fn tx_location(&self, txid: &Txid) -> Option<TxLocation> {
        self.txs.get(txid).copied()
    }

    /// A transaction of the active chain.
    pub fn transaction(&self, txid: &Txid) -> Option<(&Transaction, BlockHash)> {
        let loc = self.txs.get(txid)?;
        Some((&self.index[&loc.block].block.txdata[loc.index], loc.block))
    }

    /// Appends a block on the tip. The block must extend the tip and spend only existing
    /// outputs: the caller (the miner, or a reload of blocks we mined) vouches for the rest.
    pub fn connect(&mut self, block: Block) -> Result<(), ChainError> {
        let (tip, height) = self.tip();
        if block.header.prev_blockhash != tip {
            return Err(ChainError::NotOnTip);
        }
        let hash = block.block_hash();
        let height = height + 1;
        let mut spent = Vec::new();
        for tx in block.txdata.iter().skip(1) {
            for input in &tx.input {
                if !self.utxos.contains_key(&input.previous_output) {
                    // Put back what this block already spent before refusing it.
                    for (op, utxo) in spent.drain(..).rev() {
                        self.utxos.insert(op, utxo);
                    }
                    return Err(ChainError::MissingInput(input.previous_output));
                }
                let utxo = self.utxos.remove(&input.previous_output).expect("checked");
                spent.push((input.previous_output, utxo));
            }
            // Outputs created earlier in this block may be spent later in it.
            add_outputs(&mut self.utxos, tx, height, false);
        }
        add_outputs(&mut self.utxos, &block.txdata[0], height, true);
        for (index, tx) in block.txdata.iter().enumerate() {
            self.txs
                .insert(tx.compute_txid(), TxLocation { block: hash, index });
        }
        let chainwork = self.tip_entry().chainwork + block.header.work();
        self.undo.insert(hash, spent);
        self.active.push(hash);
        self.index.insert(
            hash,
            BlockEntry {
                block,
                height,
                chainwork,
                invalid: false,
            },
        );
        Ok(())
    }

    /// Removes the tip block from the active chain, restoring the outputs it spent; the
    /// block stays known. Returns it.
    pub fn disconnect_tip(&mut self) -> Result<Block, ChainError> {
        if self.active.len() == 1 {
            return Err(ChainError::Genesis);
        }
        let hash = self.active.pop().expect("not genesis");
        let block = self.index[&hash].block.clone();
        for tx in block.txdata.iter().rev() {
            for vout in 0..tx.output.len() as u32 {
                self.utxos.remove(&OutPoint::new(tx.compute_txid(), vout));
            }
            self.txs.remove(&tx.compute_txid());
        }
        for (op, utxo) in self.undo.remove(&hash).unwrap_or_default() {
            self.utxos.insert(op, utxo);
        }
        Ok(block)
    }

    /// Marks a known block invalid.
    pub fn mark_invalid(&mut self, hash: &BlockHash) {
        if let Some(e) = self.index.get_mut(hash) {
            e.invalid = true;
        }
    }

    /// Records a block that is known but not on the active chain (a reload of a stale
    /// block).
    pub fn add_stale(&mut self, block: Block, height: u32, invalid: bool) {
        let hash = block.block_hash();
        if self.index.contains_key(&hash) {
            return;
        }
        let chainwork = self
            .index
            .get(&block.header.prev_blockhash)
            .map(|p| p.chainwork)
            .unwrap_or(Work::from_be_bytes([0; 32]))
            + block.header.work();
        self.index.insert(
            hash,
            BlockEntry {
                block,
                height,
                chainwork,
                invalid,
            },
        );
    }

    /// The next active block after `hash`, if any.
    pub fn next_active(&self, hash: &BlockHash) -> Option<BlockHash> {
        let e = self.index.get(hash)?;
        if !self.is_active(hash) {
            return None;
        }
        self.hash_at(e.height + 1)
    }

    /// A header's hash and entry, for JSON answers.
    pub fn header(&self, hash: &BlockHash) -> Option<(&Header, &BlockEntry)> {
        self.index.get(hash).map(|e| (&e.block.header, e))
    }
}

impl Default for Chain {
    fn default() -> Self {
        Self::new()
    }
}

fn add_outputs(utxos: &mut HashMap<OutPoint, Utxo>, tx: &Transaction, height: u32, coinbase: bool) {
    let txid = tx.compute_txid();
    for (vout, txout) in tx.output.iter().enumerate() {
        // Provably unspendable outputs never enter the UTXO set, as in bitcoind.
        if txout.script_pubkey.is_op_return() {
            continue;
        }
        utxos.insert(
            OutPoint::new(txid, vout as u32),
            Utxo {
                txout: txout.clone(),
                height,
                coinbase,
            },
        );
    }
}

/// Why a block could not be connected or disconnected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    /// The block does not extend the tip.
    #[error("the block does not extend the tip")]
    NotOnTip,
    /// The block spends an output that does not exist.
    #[error("the block spends a missing output {0}")]
    MissingInput(OutPoint),
    /// Genesis cannot be disconnected.
    #[error("the genesis block cannot be disconnected")]
    Genesis,
}
