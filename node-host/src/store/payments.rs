//! Outgoing payments, by payment hash: what `ListPays` reports, kept across restarts, and
//! the calls waiting for a payment's outcome.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use redb::{Database, ReadableTable};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::schema::{PAYMENT_COUNTERS as COUNTERS, PAYMENTS};

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
    db: Database,
    waiting: Mutex<HashMap<[u8; 32], Vec<oneshot::Sender<Outcome>>>>,
}

impl Payments {
    /// Opens (creating) the store.
    pub fn open(path: &Path) -> Result<Self, PaymentError> {
        let db = super::schema::open(path).map_err(err)?;
        let txn = db.begin_write().map_err(err)?;
        txn.open_table(PAYMENTS).map_err(err)?;
        txn.open_table(COUNTERS).map_err(err)?;
        txn.commit().map_err(err)?;
        Ok(Payments {
            db,
            waiting: Mutex::default(),
        })
    }

    /// The payment with `hash`.
    pub fn get(&self, hash: &[u8; 32]) -> Result<Option<Payment>, PaymentError> {
        super::record(&self.db, PAYMENTS, hash).map_err(err)
    }

    /// Records a new payment (giving it its index) before it is sent.
    pub fn insert(&self, hash: [u8; 32], mut p: Payment) -> Result<Payment, PaymentError> {
        let txn = self.db.begin_write().map_err(err)?;
        {
            let mut counters = txn.open_table(COUNTERS).map_err(err)?;
            p.created_index = super::next(&mut counters, "created").map_err(err)?;
            let mut table = txn.open_table(PAYMENTS).map_err(err)?;
            table
                .insert(&hash, serde_json::to_vec(&p).map_err(err)?.as_slice())
                .map_err(err)?;
        }
        txn.commit().map_err(err)?;
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
        let txn = self.db.begin_write().map_err(err)?;
        let updated = {
            let mut table = txn.open_table(PAYMENTS).map_err(err)?;
            let current: Option<Payment> = match table.get(&hash).map_err(err)? {
                Some(v) => Some(serde_json::from_slice(v.value()).map_err(err)?),
                None => None,
            };
            match current {
                Some(mut p) => {
                    change(&mut p);
                    table
                        .insert(&hash, serde_json::to_vec(&p).map_err(err)?.as_slice())
                        .map_err(err)?;
                    Some(p)
                }
                None => None,
            }
        };
        txn.commit().map_err(err)?;
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
        let mut all: Vec<Payment> = super::records(&self.db, PAYMENTS).map_err(err)?;
        all.sort_by_key(|p| p.created_index);
        Ok(all)
    }
}
