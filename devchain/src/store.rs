//! The chain on disk (redb): every block mined, which ones are active, which were
//! invalidated, the mempool and the faucet key. The UTXO set is rebuilt from the blocks on
//! open: a dev chain is small.
//!
//! Blocks commit durably (fsync). Mempool changes commit without fsync and become durable
//! with the next block or a clean shutdown, as bitcoind's `mempool.dat` does: a crash can
//! lose transactions that were never mined, never a block.

use std::path::Path;

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::{Block, BlockHash, Transaction};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

/// Every block we mined: hash → height (u32 LE) ‖ serialized block.
const BLOCKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blocks");
/// The active chain: height → block hash.
const ACTIVE: TableDefinition<u32, &[u8]> = TableDefinition::new("active");
/// Blocks marked invalid by `invalidateblock`: hash → ().
const INVALID: TableDefinition<&[u8], ()> = TableDefinition::new("invalid");
/// The mempool: acceptance sequence → time (u64 LE) ‖ serialized transaction.
const MEMPOOL: TableDefinition<u64, &[u8]> = TableDefinition::new("mempool");
/// Settings: `faucet_key` → 32 secret bytes.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const FAUCET_KEY: &str = "faucet_key";

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[error("chain storage: {0}")]
pub struct StoreError(String);

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

impl StoreError {
    /// The stored data does not make sense.
    pub fn damaged(what: impl std::fmt::Display) -> Self {
        StoreError(format!("damaged chain data: {what}"))
    }

    /// A file system failure.
    pub fn from_io(what: String, e: std::io::Error) -> Self {
        StoreError(format!("{what}: {e}"))
    }
}

/// What is on disk.
#[derive(Default)]
pub struct Loaded {
    /// Active blocks from height 1 up.
    pub active: Vec<Block>,
    /// Other known blocks, with height and whether invalidated.
    pub stale: Vec<(Block, u32, bool)>,
    /// Mempool transactions in acceptance order: (sequence, time, transaction).
    pub mempool: Vec<(u64, u64, Transaction)>,
    /// The faucet's key.
    pub faucet_key: Option<[u8; 32]>,
}

/// The chain database.
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens or creates the database.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError(format!(
                "{} is in use by another process (another dev chain on this directory?)",
                path.display()
            )),
            other => err(other),
        })?;
        let txn = db.begin_write().map_err(err)?;
        txn.open_table(BLOCKS).map_err(err)?;
        txn.open_table(ACTIVE).map_err(err)?;
        txn.open_table(INVALID).map_err(err)?;
        txn.open_table(MEMPOOL).map_err(err)?;
        txn.open_table(META).map_err(err)?;
        txn.commit().map_err(err)?;
        Ok(Store { db })
    }

    /// Reads everything.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let blocks = txn.open_table(BLOCKS).map_err(err)?;
        let active = txn.open_table(ACTIVE).map_err(err)?;
        let invalid = txn.open_table(INVALID).map_err(err)?;
        let mut out = Loaded::default();
        let mut active_hashes = std::collections::HashSet::new();
        for entry in active.iter().map_err(err)? {
            let (height, hash) = entry.map_err(err)?;
            if height.value() == 0 {
                continue;
            }
            let hash = hash.value().to_vec();
            let raw = blocks.get(hash.as_slice()).map_err(err)?.ok_or_else(|| {
                StoreError(format!(
                    "active block at height {} is missing",
                    height.value()
                ))
            })?;
            out.active.push(decode_block(raw.value())?.1);
            active_hashes.insert(hash);
        }
        for entry in blocks.iter().map_err(err)? {
            let (hash, raw) = entry.map_err(err)?;
            if active_hashes.contains(hash.value()) {
                continue;
            }
            let (height, block) = decode_block(raw.value())?;
            let is_invalid = invalid.get(hash.value()).map_err(err)?.is_some();
            out.stale.push((block, height, is_invalid));
        }
        out.stale.sort_by_key(|(_, h, _)| *h);
        for entry in txn.open_table(MEMPOOL).map_err(err)?.iter().map_err(err)? {
            let (seq, raw) = entry.map_err(err)?;
            let raw = raw.value();
            if raw.len() < 8 {
                return Err(StoreError("damaged mempool entry".into()));
            }
            let time = u64::from_le_bytes(raw[..8].try_into().expect("8 bytes"));
            let tx: Transaction = deserialize(&raw[8..]).map_err(err)?;
            out.mempool.push((seq.value(), time, tx));
        }
        if let Some(key) = txn
            .open_table(META)
            .map_err(err)?
            .get(FAUCET_KEY)
            .map_err(err)?
        {
            out.faucet_key = Some(
                key.value()
                    .try_into()
                    .map_err(|_| StoreError("damaged faucet key".into()))?,
            );
        }
        Ok(out)
    }

    /// Stores the faucet key, durably.
    pub fn set_faucet_key(&self, key: &[u8; 32]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(err)?;
        txn.open_table(META)
            .map_err(err)?
            .insert(FAUCET_KEY, key.as_slice())
            .map_err(err)?;
        txn.commit().map_err(err)
    }

    /// Records newly connected blocks (height, block) and the mempool entries they took,
    /// durably.
    pub fn connect(&self, blocks: &[(u32, &Block)], mined: &[u64]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(err)?;
        {
            let mut table = txn.open_table(BLOCKS).map_err(err)?;
            let mut active = txn.open_table(ACTIVE).map_err(err)?;
            for (height, block) in blocks {
                let hash = block.block_hash();
                table
                    .insert(
                        hash.as_byte_array().as_slice(),
                        encode_block(*height, block).as_slice(),
                    )
                    .map_err(err)?;
                active
                    .insert(*height, hash.as_byte_array().as_slice())
                    .map_err(err)?;
            }
            let mut mempool = txn.open_table(MEMPOOL).map_err(err)?;
            for seq in mined {
                mempool.remove(*seq).map_err(err)?;
            }
        }
        txn.commit().map_err(err)
    }

    /// Records an invalidation: the active chain now ends at `tip_height`, `invalid` are
    /// marked, and the mempool is now `mempool`. Durable.
    pub fn reorganise(
        &self,
        tip_height: u32,
        invalid: &[BlockHash],
        mempool: &[(u64, u64, &Transaction)],
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(err)?;
        {
            let mut active = txn.open_table(ACTIVE).map_err(err)?;
            active
                .retain_in(tip_height + 1.., |_, _| false)
                .map_err(err)?;
            let mut table = txn.open_table(INVALID).map_err(err)?;
            for hash in invalid {
                table
                    .insert(hash.as_byte_array().as_slice(), ())
                    .map_err(err)?;
            }
            let mut pool = txn.open_table(MEMPOOL).map_err(err)?;
            pool.retain(|_, _| false).map_err(err)?;
            for (seq, time, tx) in mempool {
                pool.insert(*seq, encode_tx(*time, tx).as_slice())
                    .map_err(err)?;
            }
        }
        txn.commit().map_err(err)
    }

    /// Records a transaction accepted to the mempool (not fsynced; see the module notes).
    pub fn add_to_mempool(&self, seq: u64, time: u64, tx: &Transaction) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(err)?;
        txn.set_durability(Durability::None).map_err(err)?;
        txn.open_table(MEMPOOL)
            .map_err(err)?
            .insert(seq, encode_tx(time, tx).as_slice())
            .map_err(err)?;
        txn.commit().map_err(err)
    }

    /// Makes every earlier commit durable (on clean shutdown).
    pub fn flush(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(err)?;
        txn.commit().map_err(err)
    }
}

fn encode_block(height: u32, block: &Block) -> Vec<u8> {
    let mut v = height.to_le_bytes().to_vec();
    v.extend(serialize(block));
    v
}

fn decode_block(raw: &[u8]) -> Result<(u32, Block), StoreError> {
    if raw.len() < 4 {
        return Err(StoreError("damaged block".into()));
    }
    let height = u32::from_le_bytes(raw[..4].try_into().expect("4 bytes"));
    Ok((height, deserialize(&raw[4..]).map_err(err)?))
}

fn encode_tx(time: u64, tx: &Transaction) -> Vec<u8> {
    let mut v = time.to_le_bytes().to_vec();
    v.extend(serialize(tx));
    v
}
