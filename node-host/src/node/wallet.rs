//! The on-chain wallet: watch-only on the signer's wallet keys.
//!
//! VLS's wallet keys are the account xpub's children with one path component
//! (`KeyDerivationStyle::Native`), so the wallet is BDK's single-descriptor wallet on
//! `wpkh(<xpub>/*)`: receive and change share the keychain (as CLN does), and the PSBTs it
//! builds carry each input's and change output's path `[index]`, which is how VLS recognises
//! its own outputs. It learns the chain block by block with the rest of the node, and is
//! persisted (BDK's change set, JSON) in the node's store.

use std::sync::{Arc, Mutex, MutexGuard};

use bdk_wallet::chain::{BlockId, CheckPoint, Merge};
use bdk_wallet::{ChangeSet, KeychainKind, LocalOutput, Update};
use crate::store::ldk_store::LdkStore;
use lightning_signer::bitcoin::bip32::Xpub;
use lightning_signer::bitcoin::block::Header;
use lightning_signer::bitcoin::psbt::Psbt;
use lightning_signer::bitcoin::{
    Address, Amount, Block, BlockHash, FeeRate, Network, OutPoint, ScriptBuf, Transaction, TxOut,
};
use lightning_signer::lightning::chain::transaction::TransactionData;
use lightning_signer::lightning::chain::{BestBlock, Listen};
use lightning_signer::lightning::util::persist::KVStoreSync;

use crate::store::schema::{WALLET_KEY as KEY, WALLET_NAMESPACE as NAMESPACE};

/// The wallet.
pub struct Wallet {
    inner: Mutex<Inner>,
    store: Arc<LdkStore>,
}

struct Inner {
    wallet: bdk_wallet::Wallet,
    /// Everything persisted so far, merged: what is written back whole.
    persisted: ChangeSet,
}

/// A wallet failure.
#[derive(Debug, thiserror::Error)]
#[error("wallet: {0}")]
pub struct WalletError(pub String);

fn err(e: impl std::fmt::Display) -> WalletError {
    WalletError(e.to_string())
}

impl Wallet {
    /// Opens the wallet of `xpub` from `store`, or creates it. A new wallet starts at
    /// `birth` (the node's tip when created): a new node's keys have no older history.
    pub fn open(
        store: Arc<LdkStore>,
        xpub: &Xpub,
        network: Network,
        birth: BlockId,
        genesis: BlockHash,
    ) -> Result<Self, WalletError> {
        let descriptor = format!("wpkh({xpub}/*)");
        let stored = match store.read(NAMESPACE, "", KEY) {
            Ok(bytes) => Some(serde_json::from_slice::<ChangeSet>(&bytes).map_err(err)?),
            Err(e) if e.kind() == lightning_signer::lightning::io::ErrorKind::NotFound => None,
            Err(e) => return Err(err(e)),
        };
        let inner = match stored {
            Some(persisted) => {
                let wallet = bdk_wallet::Wallet::load()
                    .descriptor(KeychainKind::External, Some(descriptor))
                    .check_network(network)
                    .load_wallet_no_persist(persisted.clone())
                    .map_err(err)?
                    .ok_or_else(|| err("the stored wallet is empty"))?;
                Inner { wallet, persisted }
            }
            None => {
                let mut wallet = bdk_wallet::Wallet::create_single(descriptor)
                    .network(network)
                    .genesis_hash(genesis)
                    .create_wallet_no_persist()
                    .map_err(err)?;
                if birth.height > 0 {
                    let tip = CheckPoint::from_block_ids([
                        BlockId {
                            height: 0,
                            hash: genesis,
                        },
                        birth,
                    ])
                    .map_err(|_| err("bad birth block"))?;
                    wallet
                        .apply_update(Update {
                            chain: Some(tip),
                            ..Default::default()
                        })
                        .map_err(err)?;
                }
                Inner {
                    wallet,
                    persisted: ChangeSet::default(),
                }
            }
        };
        let wallet = Wallet {
            inner: Mutex::new(inner),
            store,
        };
        wallet.persist(&mut wallet.lock())?;
        Ok(wallet)
    }

    /// Whether `store` holds a wallet.
    pub fn exists(store: &LdkStore) -> Result<bool, WalletError> {
        match store.read(NAMESPACE, "", KEY) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == lightning_signer::lightning::io::ErrorKind::NotFound => Ok(false),
            // A wallet that cannot be read is not a wallet to start again: its addresses
            // may hold funds.
            Err(e) => Err(WalletError(format!("cannot read the stored wallet: {e}"))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes what changed, durably, before anyone acts on it.
    fn persist(&self, inner: &mut Inner) -> Result<(), WalletError> {
        if let Some(staged) = inner.wallet.take_staged() {
            inner.persisted.merge(staged);
            let json = serde_json::to_vec(&inner.persisted).map_err(err)?;
            self.store.write(NAMESPACE, "", KEY, json).map_err(err)?;
        }
        Ok(())
    }

    /// A new address (the next unused index), remembered before it is handed out.
    pub fn new_address(&self) -> Result<Address, WalletError> {
        let mut inner = self.lock();
        let info = inner.wallet.reveal_next_address(KeychainKind::External);
        self.persist(&mut inner)?;
        Ok(info.address)
    }

    /// The block the wallet has seen last.
    pub fn tip(&self) -> BlockId {
        self.lock().wallet.latest_checkpoint().block_id()
    }

    /// Every output of ours (spent ones too if `spent`).
    pub fn outputs(&self, spent: bool) -> Vec<LocalOutput> {
        let inner = self.lock();
        if spent {
            inner.wallet.list_output().collect()
        } else {
            inner.wallet.list_unspent().collect()
        }
    }

    /// An unsigned transaction paying `amount` to `script` from the wallet at
    /// `sat_per_kw`, change back to the wallet. Every input is the wallet's own P2WPKH
    /// (segwit, so the txid is final before signing), and the PSBT carries what VLS needs:
    /// each input's previous output whole and as `witness_utxo`, and the change output's
    /// path. Outpoints in `reserved` are not used.
    pub fn build_payment(
        &self,
        script: ScriptBuf,
        amount: Amount,
        sat_per_kw: u32,
        reserved: &[OutPoint],
    ) -> Result<Psbt, WalletError> {
        self.build_payments(&[(script, amount)], sat_per_kw, reserved)
    }

    /// As [`Wallet::build_payment`], with an output for each of `recipients`.
    pub fn build_payments(
        &self,
        recipients: &[(ScriptBuf, Amount)],
        sat_per_kw: u32,
        reserved: &[OutPoint],
    ) -> Result<Psbt, WalletError> {
        let mut inner = self.lock();
        let mut builder = inner.wallet.build_tx();
        builder
            .set_recipients(recipients.to_vec())
            .fee_rate(FeeRate::from_sat_per_kwu(sat_per_kw as u64))
            .unspendable(reserved.to_vec());
        let psbt = builder.finish().map_err(err)?;
        // The change address it may have revealed is remembered.
        self.persist(&mut inner)?;
        Ok(psbt)
    }

    /// For each input of `psbt`, in order, the wallet's output it spends: its key index
    /// and value. `None` if any input is not the wallet's.
    pub fn inputs_of(&self, psbt: &Psbt) -> Option<Vec<(u32, TxOut)>> {
        let inner = self.lock();
        psbt.unsigned_tx
            .input
            .iter()
            .map(|i| {
                inner
                    .wallet
                    .get_utxo(i.previous_output)
                    .map(|o| (o.derivation_index, o.txout))
            })
            .collect()
    }

    /// Records a transaction we broadcast, so its inputs count as spent at once.
    pub fn sent(&self, tx: Transaction) {
        let mut inner = self.lock();
        let now = crate::now_secs();
        inner.wallet.apply_unconfirmed_txs([(tx, now)]);
        if let Err(e) = self.persist(&mut inner) {
            tracing::error!(error = %e, "cannot store the wallet");
        }
    }

    /// The network.
    pub fn network(&self) -> Network {
        self.lock().wallet.network()
    }
}

impl Listen for Wallet {
    fn filtered_block_connected(&self, header: &Header, txdata: &TransactionData, height: u32) {
        let block = Block {
            header: *header,
            txdata: txdata.iter().map(|(_, tx)| (*tx).clone()).collect(),
        };
        self.block_connected(&block, height);
    }

    fn block_connected(&self, block: &Block, height: u32) {
        let mut inner = self.lock();
        let connected_to = BlockId {
            height: height.saturating_sub(1),
            hash: block.header.prev_blockhash,
        };
        if let Err(e) = inner
            .wallet
            .apply_block_connected_to(block, height, connected_to)
        {
            tracing::error!(height, error = %e, "the wallet cannot take this block");
            return;
        }
        if let Err(e) = self.persist(&mut inner) {
            // The chain is fed again from the stored tip at the next start.
            tracing::error!(error = %e, "cannot store the wallet");
        }
    }

    fn blocks_disconnected(&self, fork_point: BestBlock) {
        // BDK replaces the stale blocks when the next block names its parent.
        tracing::info!(height = fork_point.height, "wallet: blocks disconnected");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightning_signer::bitcoin::bip32::Xpriv;
    use lightning_signer::bitcoin::blockdata::constants::genesis_block;
    use lightning_signer::bitcoin::hashes::Hash;
    use lightning_signer::bitcoin::secp256k1::Secp256k1;

    fn xpub() -> Xpub {
        let xpriv = Xpriv::new_master(Network::Regtest, &[7; 32]).unwrap();
        Xpub::from_priv(&Secp256k1::new(), &xpriv)
    }

    #[test]
    fn addresses_are_remembered_across_opens_and_start_at_the_birth_block() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LdkStore::open(&dir.path().join("ldk.redb")).unwrap());
        let genesis = genesis_block(Network::Regtest).block_hash();
        let birth = BlockId {
            height: 5,
            hash: BlockHash::from_byte_array([5; 32]),
        };
        let w = Wallet::open(store.clone(), &xpub(), Network::Regtest, birth, genesis).unwrap();
        assert_eq!(w.tip(), birth);
        let a = w.new_address().unwrap();
        let b = w.new_address().unwrap();
        assert_ne!(a, b);
        assert!(a.to_string().starts_with("bcrt1q"), "{a}");
        drop(w);
        let w = Wallet::open(store, &xpub(), Network::Regtest, birth, genesis).unwrap();
        assert_eq!(w.tip(), birth);
        let c = w.new_address().unwrap();
        assert_ne!(c, a);
        assert_ne!(c, b, "an address handed out is never handed out again");
    }
}
