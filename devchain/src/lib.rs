//! Skylight's embedded regtest chain.
//!
//! No bitcoind can be installed where Skylight is developed and tested, and an operator
//! trying Skylight should not need one. This crate mines real regtest blocks, keeps a
//! mempool that validates transactions as bitcoind does (scripts under libbitcoinconsensus),
//! and serves the bitcoind JSON-RPC subset that LDK's `lightning-block-sync` and wallets use,
//! so node-hosts run their production chain code against it.
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod chain;
pub mod client;
pub mod faucet;
pub mod mempool;
pub mod miner;
pub mod ops;
pub mod params;
pub mod policy;
pub mod rpc;
pub mod store;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use bitcoin::secp256k1::SecretKey;
use bitcoin::{Amount, BlockHash, ScriptBuf, Transaction, Txid};

use crate::chain::Chain;
use crate::faucet::{Faucet, FaucetError};
use crate::mempool::Mempool;
use crate::policy::Reject;
use crate::store::{Store, StoreError};

/// Settings of a dev chain.
#[derive(Debug, Clone)]
pub struct Config {
    /// Minimum relay fee, sat per 1000 vbytes.
    pub min_relay_fee_sat_per_kvb: u64,
    /// What `estimatesmartfee` answers, sat per 1000 vbytes.
    pub feerate_sat_per_kvb: u64,
    /// Blocks mined to the faucet when the chain is new, so it can pay at once (101 makes
    /// one coinbase mature).
    pub initial_blocks: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            min_relay_fee_sat_per_kvb: params::DEFAULT_MIN_RELAY_FEE_SAT_PER_KVB,
            feerate_sat_per_kvb: params::DEFAULT_FEERATE_SAT_PER_KVB,
            initial_blocks: 0,
        }
    }
}

/// The chain, its mempool and its faucet.
pub struct State {
    /// Blocks and UTXO set.
    pub chain: Chain,
    /// Unconfirmed transactions.
    pub mempool: Mempool,
    /// The miner's wallet.
    pub faucet: Faucet,
}

/// A failure of a chain operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A transaction was refused.
    #[error(transparent)]
    Rejected(#[from] Reject),
    /// The faucet could not pay.
    #[error(transparent)]
    Faucet(#[from] FaucetError),
    /// No such block.
    #[error("Block not found")]
    BlockNotFound,
    /// A request that makes no sense (invalidating genesis, say).
    #[error("{0}")]
    Invalid(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A regtest chain with its mempool, stored on disk.
pub struct DevChain {
    state: Mutex<State>,
    store: Store,
    config: Config,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl DevChain {
    /// Opens the chain stored in `dir` (creating it from genesis if new).
    pub fn open(dir: &Path, config: Config) -> Result<Self, Error> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::from_io(format!("cannot create {}", dir.display()), e))?;
        let db_path = dir.join("chain.redb");
        let store = Store::open(&db_path)?;
        restrict(&db_path);
        let loaded = store.load()?;
        let fresh = loaded.active.is_empty();

        let mut chain = Chain::new();
        for block in loaded.active {
            chain
                .connect(block)
                .map_err(|e| StoreError::damaged(format!("stored chain does not connect: {e}")))?;
        }
        for (block, height, invalid) in loaded.stale {
            chain.add_stale(block, height, invalid);
        }
        let faucet = match loaded.faucet_key {
            Some(key) => Faucet::new(
                SecretKey::from_slice(&key).map_err(|_| StoreError::damaged("faucet key"))?,
            ),
            None => {
                let f = Faucet::generate();
                store.set_faucet_key(&f.secret_bytes())?;
                f
            }
        };
        let dev = DevChain {
            state: Mutex::new(State {
                chain,
                mempool: Mempool::default(),
                faucet,
            }),
            store,
            config,
        };
        {
            // Replay the stored mempool through validation: what no longer fits is dropped.
            let mut state = dev.lock();
            for (seq, time, tx) in loaded.mempool {
                let State { chain, mempool, .. } = &mut *state;
                if let Ok(mut entry) = policy::check(
                    chain,
                    mempool,
                    &tx,
                    dev.config.min_relay_fee_sat_per_kvb,
                    time,
                ) {
                    entry.seq = seq;
                    mempool.insert(entry);
                }
            }
        }
        if fresh && dev.config.initial_blocks > 0 {
            let script = dev.faucet_script();
            dev.mine(dev.config.initial_blocks, &script)?;
        }
        Ok(dev)
    }

    /// Locks the state for reading or changing it.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The faucet's script (where `generatetoaddress` to `getnewaddress` pays).
    pub fn faucet_script(&self) -> ScriptBuf {
        self.lock().faucet.script()
    }

    /// Submits a transaction to the mempool; a transaction already there is accepted again.
    pub fn submit(&self, tx: &Transaction) -> Result<Txid, Error> {
        let txid = tx.compute_txid();
        let mut state = self.lock();
        let State { chain, mempool, .. } = &mut *state;
        if mempool.get(&txid).is_some() {
            return Ok(txid);
        }
        let mut entry = policy::check(
            chain,
            mempool,
            tx,
            self.config.min_relay_fee_sat_per_kvb,
            now(),
        )?;
        entry.seq = mempool.next_seq();
        self.store.add_to_mempool(entry.seq, entry.time, tx)?;
        mempool.insert(entry);
        Ok(txid)
    }

    /// Checks a transaction as `submit` would, without adding it.
    pub fn test_accept(&self, tx: &Transaction) -> Result<mempool::Entry, Reject> {
        let state = self.lock();
        policy::check(
            &state.chain,
            &state.mempool,
            tx,
            self.config.min_relay_fee_sat_per_kvb,
            now(),
        )
    }

    /// Mines `n` blocks paying to `payout`, each taking mempool transactions by fee rate.
    pub fn mine(&self, n: u32, payout: &ScriptBuf) -> Result<Vec<BlockHash>, Error> {
        let mut state = self.lock();
        let mut mined_blocks = Vec::with_capacity(n as usize);
        let mut mined_seqs = Vec::new();
        for _ in 0..n {
            let State { chain, mempool, .. } = &mut *state;
            let selected = mempool.select(params::MAX_BLOCK_WEIGHT - 4_000);
            let fees: Amount = selected.iter().map(|e| e.fee).sum();
            let txs: Vec<Transaction> = selected.iter().map(|e| e.tx.clone()).collect();
            let block = miner::build_block(chain, txs, fees, payout.clone(), now() as u32);
            for tx in block.txdata.iter().skip(1) {
                if let Some(e) = mempool.remove(&tx.compute_txid()) {
                    mined_seqs.push(e.seq);
                }
            }
            chain
                .connect(block.clone())
                .map_err(|e| Error::Invalid(format!("mined block did not connect: {e}")))?;
            mined_blocks.push((chain.height(), block));
        }
        let refs: Vec<(u32, &bitcoin::Block)> = mined_blocks.iter().map(|(h, b)| (*h, b)).collect();
        self.store.connect(&refs, &mined_seqs)?;
        Ok(mined_blocks.iter().map(|(_, b)| b.block_hash()).collect())
    }

    /// `invalidateblock`: marks `hash` invalid; if it is active, disconnects it and every
    /// block above it, and returns their transactions to the mempool where still valid.
    pub fn invalidate(&self, hash: &BlockHash) -> Result<(), Error> {
        let mut state = self.lock();
        let State { chain, mempool, .. } = &mut *state;
        let entry = chain.entry(hash).ok_or(Error::BlockNotFound)?;
        if entry.height == 0 {
            return Err(Error::Invalid(
                "the genesis block cannot be invalidated".into(),
            ));
        }
        let height = entry.height;
        let mut invalid = vec![*hash];
        let mut disconnected = Vec::new();
        if chain.is_active(hash) {
            while chain.height() >= height {
                let block = chain
                    .disconnect_tip()
                    .map_err(|e| Error::Invalid(e.to_string()))?;
                invalid.push(block.block_hash());
                disconnected.push(block);
            }
        }
        for h in &invalid {
            chain.mark_invalid(h);
        }
        // Transactions of the disconnected blocks first (oldest block first), then what was
        // waiting already; whatever no longer validates is dropped, as bitcoind does.
        let waiting = mempool.drain();
        let returning = disconnected
            .iter()
            .rev()
            .flat_map(|b| b.txdata.iter().skip(1).cloned())
            .map(|tx| (None, now(), tx))
            .chain(waiting.into_iter().map(|e| (Some(e.seq), e.time, e.tx)));
        for (seq, time, tx) in returning {
            if let Ok(mut entry) = policy::check(
                chain,
                mempool,
                &tx,
                self.config.min_relay_fee_sat_per_kvb,
                time,
            ) {
                entry.seq = match seq {
                    Some(s) => s,
                    None => mempool.next_seq(),
                };
                mempool.insert(entry);
            }
        }
        let mut pool: Vec<(u64, u64, &Transaction)> =
            mempool.entries().map(|e| (e.seq, e.time, &e.tx)).collect();
        pool.sort_by_key(|p| p.0);
        self.store.reorganise(chain.height(), &invalid, &pool)?;
        Ok(())
    }

    /// The faucet pays `amount` to `to`; returns the transaction id.
    pub fn faucet_pay(&self, to: ScriptBuf, amount: Amount) -> Result<Txid, Error> {
        let tx = {
            let state = self.lock();
            state.faucet.pay(
                &state.chain,
                &state.mempool,
                to,
                amount,
                self.config.feerate_sat_per_kvb,
            )?
        };
        self.submit(&tx)
    }

    /// Makes everything durable (call on clean shutdown).
    pub fn flush(&self) -> Result<(), Error> {
        Ok(self.store.flush()?)
    }
}

/// Makes a file readable by its owner only.
pub(crate) fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

#[cfg(test)]
mod tests;
