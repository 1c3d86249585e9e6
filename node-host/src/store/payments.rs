//! Outgoing payments, by payment hash: what `ListPays` reports, kept across restarts, and
//! the calls waiting for a payment's outcome.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::kv::{Batch, Durability, NodeKv};
use super::schema::{COUNTERS, PAYMENTS, PAYMENTS_CREATED};

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentStatus {
    /// Sent, no outcome yet.
    Pending,
    /// The payee released the preimage.
    Complete,
    /// Given up.
    Failed,
}

/// One outgoing payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The invoice paid.
    pub bolt11: String,
    /// Payment hash, hex.
    pub payment_hash: String,
    /// The payee, hex.
    pub destination: String,
    /// What the payee gets.
    pub amount_msat: u64,
    /// What left us, fees included (known once complete).
    pub amount_sent_msat: Option<u64>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds.
    pub completed_at: Option<u64>,
    /// Hex, once complete.
    pub preimage: Option<String>,
    /// 1 for the first payment, then up by one.
    pub created_index: u64,
    /// Where it stands.
    pub status: PaymentStatus,
    /// Why it failed, if it did.
    pub failure: Option<String>,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[error("payment storage: {0}")]
pub struct PaymentError(String);

fn err(e: impl std::fmt::Display) -> PaymentError {
    PaymentError(e.to_string())
}

/// The outcome a waiting `Pay` call gets.
pub type Outcome = Result<Payment, String>;

/// The store, and the calls waiting.
pub struct Payments {
    kv: Arc<dyn NodeKv>,
    /// Held across each read-and-write (a counter raised, a record changed).
    writing: Mutex<()>,
    waiting: Mutex<HashMap<[u8; 32], Vec<oneshot::Sender<Outcome>>>>,
}

impl Payments {
    /// The payments in the node's store.
    pub fn open(kv: Arc<dyn NodeKv>) -> Self {
        Payments {
            kv,
            writing: Mutex::default(),
            waiting: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The payment with `hash`.
    pub fn get(&self, hash: &[u8; 32]) -> Result<Option<Payment>, PaymentError> {
        let raw = self
            .kv
            .read(PAYMENTS.primary, PAYMENTS.secondary, &hex::encode(hash))
            .map_err(err)?;
        raw.map(|v| serde_json::from_slice(&v).map_err(err))
            .transpose()
    }

    /// Records a new payment (giving it its index) before it is sent.
    pub fn insert(&self, hash: [u8; 32], mut p: Payment) -> Result<Payment, PaymentError> {
        let _writing = self.lock();
        let mut batch = Batch::new(&*self.kv);
        p.created_index = batch.next(COUNTERS, PAYMENTS_CREATED).map_err(err)?;
        batch.put(
            PAYMENTS,
            &hex::encode(hash),
            serde_json::to_vec(&p).map_err(err)?,
        );
        batch.commit(Durability::Immediate).map_err(err)?;
        Ok(p)
    }

    /// Waits for the outcome of the payment with `hash`.
    pub fn wait(&self, hash: [u8; 32]) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(hash)
            .or_default()
            .push(tx);
        rx
    }

    /// Records the payment's outcome and tells whoever waits.
    pub fn settle(
        &self,
        hash: [u8; 32],
        change: impl FnOnce(&mut Payment),
    ) -> Result<Option<Payment>, PaymentError> {
        let updated = {
            let _writing = self.lock();
            match self.get(&hash)? {
                Some(mut p) => {
                    change(&mut p);
                    self.kv
                        .write(
                            PAYMENTS.primary,
                            PAYMENTS.secondary,
                            &hex::encode(hash),
                            &serde_json::to_vec(&p).map_err(err)?,
                        )
                        .map_err(err)?;
                    Some(p)
                }
                None => None,
            }
        };
        if let Some(p) = &updated {
            let waiters = self
                .waiting
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&hash)
                .unwrap_or_default();
            for w in waiters {
                let outcome = match p.status {
                    PaymentStatus::Failed => Err(p.failure.clone().unwrap_or_default()),
                    _ => Ok(p.clone()),
                };
                let _ = w.send(outcome);
            }
        }
        Ok(updated)
    }

    /// Every payment, oldest first.
    pub fn list(&self) -> Result<Vec<Payment>, PaymentError> {
        let rows = self
            .kv
            .scan(PAYMENTS.primary, PAYMENTS.secondary)
            .map_err(err)?;
        let mut all = rows
            .iter()
            .map(|(_, v)| serde_json::from_slice(v).map_err(err))
            .collect::<Result<Vec<Payment>, _>>()?;
        all.sort_by_key(|p| p.created_index);
        Ok(all)
    }
}
