//! The miner's own wallet: coinbases pay to its key, and `sendtoaddress` spends them.

use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{
    Address, Amount, CompressedPublicKey, Network, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, Witness, absolute, transaction,
};

use crate::chain::Chain;
use crate::mempool::Mempool;
use crate::params::COINBASE_MATURITY;

/// The faucet's key and address.
pub struct Faucet {
    secret: SecretKey,
    /// Its P2WPKH address.
    pub address: Address,
}

impl std::fmt::Debug for Faucet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faucet")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Why the faucet could not pay.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FaucetError {
    /// Not enough mature coins.
    #[error(
        "Insufficient funds: the faucet has {available} spendable, {needed} needed; mine more blocks"
    )]
    InsufficientFunds {
        /// What it could spend.
        available: Amount,
        /// What it needed.
        needed: Amount,
    },
    /// The amount is below dust or zero.
    #[error("Amount {0} is too small to send")]
    TooSmall(Amount),
}

/// Outputs below this are not worth creating (bitcoind's P2WPKH dust limit is 294 sat).
const DUST: Amount = Amount::from_sat(1_000);

impl Faucet {
    /// The faucet of a secret key.
    pub fn new(secret: SecretKey) -> Self {
        let secp = Secp256k1::signing_only();
        let pk = CompressedPublicKey(secret.public_key(&secp));
        Faucet {
            secret,
            address: Address::p2wpkh(&pk, Network::Regtest),
        }
    }

    /// A new random faucet.
    pub fn generate() -> Self {
        Self::new(SecretKey::new(&mut bitcoin::secp256k1::rand::thread_rng()))
    }

    /// The secret key bytes, for persistence.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.secret.secret_bytes()
    }

    /// Its script.
    pub fn script(&self) -> ScriptBuf {
        self.address.script_pubkey()
    }

    /// What the faucet can spend now: mature confirmed coins and its own unconfirmed
    /// change, none already spent in the mempool.
    fn coins(&self, chain: &Chain, mempool: &Mempool) -> Vec<(OutPoint, TxOut)> {
        let script = self.script();
        let next_height = chain.height() + 1;
        let mut coins: Vec<(OutPoint, TxOut)> = chain
            .utxos()
            .filter(|(_, u)| u.txout.script_pubkey == script)
            .filter(|(_, u)| !u.coinbase || next_height - u.height >= COINBASE_MATURITY)
            .map(|(op, u)| (*op, u.txout.clone()))
            .collect();
        for entry in mempool.entries() {
            let txid = entry.tx.compute_txid();
            for (vout, out) in entry.tx.output.iter().enumerate() {
                if out.script_pubkey == script {
                    coins.push((OutPoint::new(txid, vout as u32), out.clone()));
                }
            }
        }
        coins.retain(|(op, _)| mempool.spender(op).is_none());
        // Largest first: fewest inputs.
        coins.sort_by(|a, b| b.1.value.cmp(&a.1.value).then(a.0.cmp(&b.0)));
        coins
    }

    /// Builds and signs a payment of `amount` to `to`, at `fee_rate_sat_per_kvb`.
    pub fn pay(
        &self,
        chain: &Chain,
        mempool: &Mempool,
        to: ScriptBuf,
        amount: Amount,
        fee_rate_sat_per_kvb: u64,
    ) -> Result<Transaction, FaucetError> {
        if amount < DUST {
            return Err(FaucetError::TooSmall(amount));
        }
        let fee_for = |inputs: usize| {
            // P2WPKH input ~68 vB, output ~31-43 vB, overhead ~11 vB.
            let vsize = 11 + 68 * inputs as u64 + 43 * 2;
            Amount::from_sat(fee_rate_sat_per_kvb * vsize / 1000 + 1)
        };
        let mut chosen = Vec::new();
        let mut total = Amount::ZERO;
        let coins = self.coins(chain, mempool);
        let available: Amount = coins.iter().map(|(_, o)| o.value).sum();
        for (op, out) in coins {
            if total >= amount + fee_for(chosen.len()) {
                break;
            }
            total += out.value;
            chosen.push((op, out));
        }
        let fee = fee_for(chosen.len());
        if total < amount + fee {
            return Err(FaucetError::InsufficientFunds {
                available,
                needed: amount + fee,
            });
        }
        let mut output = vec![TxOut {
            value: amount,
            script_pubkey: to,
        }];
        let change = total - amount - fee;
        if change >= DUST {
            output.push(TxOut {
                value: change,
                script_pubkey: self.script(),
            });
        }
        let mut tx = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: chosen
                .iter()
                .map(|(op, _)| TxIn {
                    previous_output: *op,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                    witness: Witness::new(),
                })
                .collect(),
            output,
        };
        self.sign(
            &mut tx,
            &chosen.iter().map(|(_, o)| o.clone()).collect::<Vec<_>>(),
        );
        Ok(tx)
    }

    /// Signs every input of `tx`, each spending the matching `prevouts` entry (P2WPKH).
    fn sign(&self, tx: &mut Transaction, prevouts: &[TxOut]) {
        for (i, prev) in prevouts.iter().enumerate() {
            sign_p2wpkh(tx, i, &self.secret, prev.value);
        }
    }
}

/// Signs input `index` of `tx`, which spends a P2WPKH output of `value` paying `secret`'s
/// key (SIGHASH_ALL).
pub fn sign_p2wpkh(tx: &mut Transaction, index: usize, secret: &SecretKey, value: Amount) {
    let secp = Secp256k1::signing_only();
    let pk = CompressedPublicKey(secret.public_key(&secp));
    let script = ScriptBuf::new_p2wpkh(&pk.wpubkey_hash());
    let sighash = SighashCache::new(&*tx)
        .p2wpkh_signature_hash(index, &script, value, EcdsaSighashType::All)
        .expect("input index within the transaction");
    let sig = secp.sign_ecdsa(&Message::from(sighash), secret);
    tx.input[index].witness = Witness::p2wpkh(&bitcoin::ecdsa::Signature::sighash_all(sig), &pk.0);
}
