//! The node's invoices, by label (CLN's key: a label names one invoice for good).
//!
//! LDK makes invoices statelessly (the payment secret and, unless the caller chose it, the
//! preimage are derived from the signer's inbound-payment key), so what is kept here is
//! what the node API reports: the label, the invoice text, the amounts and whether it was
//! paid. A caller-chosen preimage is kept too, because nothing else could claim the payment.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::kv::{Batch, Durability, NodeKv};
use super::schema::{
    COUNTERS, INVOICE_LABELS as BY_HASH, INVOICES as BY_LABEL, INVOICES_CREATED, INVOICES_PAID,
};

/// One invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// The caller's label.
    pub label: String,
    /// The BOLT11 text.
    pub bolt11: String,
    /// The payment hash, hex.
    pub payment_hash: String,
    /// The amount asked, if any.
    pub amount_msat: Option<u64>,
    /// The description.
    pub description: String,
    /// Unix seconds after which it cannot be paid.
    pub expires_at: u64,
    /// 1 for the first invoice, then up by one.
    pub created_index: u64,
    /// The caller's preimage (hex), when the caller chose it.
    pub preimage: Option<String>,
    /// Set once paid.
    pub paid: Option<Paid>,
}

/// How an invoice was paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paid {
    /// What was received.
    pub amount_received_msat: u64,
    /// Unix seconds.
    pub paid_at: u64,
    /// 1 for the first paid invoice, then up by one.
    pub pay_index: u64,
    /// The preimage released, hex.
    pub preimage: String,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum InvoiceError {
    /// The label names another invoice already.
    #[error("an invoice labelled {0:?} exists already")]
    DuplicateLabel(String),
    /// The store failed.
    #[error("invoice storage: {0}")]
    Storage(String),
}

fn err(e: impl std::fmt::Display) -> InvoiceError {
    InvoiceError::Storage(e.to_string())
}

/// The invoice store.
pub struct Invoices {
    kv: Arc<dyn NodeKv>,
    /// Held across each read-and-write (a label checked and taken, a counter raised).
    writing: Mutex<()>,
}

impl Invoices {
    /// The invoices in the node's store.
    pub fn open(kv: Arc<dyn NodeKv>) -> Self {
        Invoices {
            kv,
            writing: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The invoice labelled `label`.
    pub fn get(&self, label: &str) -> Result<Option<Invoice>, InvoiceError> {
        let raw = self
            .kv
            .read(BY_LABEL.primary, BY_LABEL.secondary, label)
            .map_err(err)?;
        raw.map(|v| serde_json::from_slice(&v).map_err(err))
            .transpose()
    }

    fn label_of(&self, payment_hash: &[u8; 32]) -> Result<Option<String>, InvoiceError> {
        let raw = self
            .kv
            .read(BY_HASH.primary, BY_HASH.secondary, &hex::encode(payment_hash))
            .map_err(err)?;
        raw.map(|v| String::from_utf8(v).map_err(err)).transpose()
    }

    /// The invoice for `payment_hash`.
    pub fn by_hash(&self, payment_hash: &[u8; 32]) -> Result<Option<Invoice>, InvoiceError> {
        match self.label_of(payment_hash)? {
            Some(label) => self.get(&label),
            None => Ok(None),
        }
    }

    /// The preimage the caller chose for the invoice with `payment_hash`, if any (LDK
    /// derives the others itself).
    pub fn chosen_preimage(
        &self,
        payment_hash: &[u8; 32],
    ) -> Result<Option<[u8; 32]>, InvoiceError> {
        Ok(self
            .by_hash(payment_hash)?
            .and_then(|i| i.preimage)
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| b.try_into().ok()))
    }

    /// The next `created_index` (what [`Invoices::insert`] will give).
    #[cfg(test)]
    pub fn next_index(&self) -> Result<u64, InvoiceError> {
        let raw = self
            .kv
            .read(COUNTERS.primary, COUNTERS.secondary, INVOICES_CREATED)
            .map_err(err)?;
        Ok(super::kv::counter(raw.as_deref()).map_err(err)? + 1)
    }

    /// Stores a new invoice, giving it the next `created_index`; refuses a label in use.
    pub fn insert(&self, mut invoice: Invoice, hash: [u8; 32]) -> Result<Invoice, InvoiceError> {
        let _writing = self.lock();
        let mut batch = Batch::new(&*self.kv);
        if batch.get(BY_LABEL, &invoice.label).map_err(err)?.is_some() {
            return Err(InvoiceError::DuplicateLabel(invoice.label));
        }
        invoice.created_index = batch.next(COUNTERS, INVOICES_CREATED).map_err(err)?;
        let json = serde_json::to_vec(&invoice).map_err(err)?;
        batch.put(BY_LABEL, &invoice.label, json);
        batch.put(BY_HASH, &hex::encode(hash), invoice.label.clone().into_bytes());
        batch.commit(Durability::Immediate).map_err(err)?;
        Ok(invoice)
    }

    /// Records that the invoice for `hash` was paid (once; later calls change nothing).
    /// Returns the invoice, if there is one for `hash`.
    pub fn mark_paid(
        &self,
        hash: &[u8; 32],
        amount_received_msat: u64,
        preimage: &[u8; 32],
        paid_at: u64,
    ) -> Result<Option<Invoice>, InvoiceError> {
        let _writing = self.lock();
        let Some(label) = self.label_of(hash)? else {
            return Ok(None);
        };
        let Some(mut invoice) = self.get(&label)? else {
            return Ok(None);
        };
        if invoice.paid.is_some() {
            return Ok(Some(invoice));
        }
        let mut batch = Batch::new(&*self.kv);
        let pay_index = batch.next(COUNTERS, INVOICES_PAID).map_err(err)?;
        invoice.paid = Some(Paid {
            amount_received_msat,
            paid_at,
            pay_index,
            preimage: hex::encode(preimage),
        });
        batch.put(
            BY_LABEL,
            &label,
            serde_json::to_vec(&invoice).map_err(err)?,
        );
        batch.commit(Durability::Immediate).map_err(err)?;
        Ok(Some(invoice))
    }

    /// Every invoice, oldest first.
    pub fn list(&self) -> Result<Vec<Invoice>, InvoiceError> {
        let rows = self
            .kv
            .scan(BY_LABEL.primary, BY_LABEL.secondary)
            .map_err(err)?;
        let mut all = rows
            .iter()
            .map(|(_, v)| serde_json::from_slice(v).map_err(err))
            .collect::<Result<Vec<Invoice>, _>>()?;
        all.sort_by_key(|i| i.created_index);
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kv::redb::RedbKv;

    fn invoice(label: &str) -> Invoice {
        Invoice {
            label: label.into(),
            bolt11: "lnbcrt1".into(),
            payment_hash: "00".repeat(32),
            amount_msat: Some(1000),
            description: "d".into(),
            expires_at: 10,
            created_index: 0,
            preimage: None,
            paid: None,
        }
    }

    #[test]
    fn labels_are_unique_indexes_grow_and_payment_is_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ldk.redb");
        let store = Invoices::open(Arc::new(RedbKv::open(&path).unwrap()));
        assert_eq!(
            store.insert(invoice("a"), [1; 32]).unwrap().created_index,
            1
        );
        assert!(matches!(
            store.insert(invoice("a"), [2; 32]),
            Err(InvoiceError::DuplicateLabel(_))
        ));
        assert_eq!(
            store.insert(invoice("b"), [2; 32]).unwrap().created_index,
            2
        );
        let paid = store
            .mark_paid(&[2; 32], 1000, &[9; 32], 5)
            .unwrap()
            .unwrap();
        assert_eq!(paid.paid.as_ref().unwrap().pay_index, 1);
        let again = store.mark_paid(&[2; 32], 7, &[9; 32], 6).unwrap().unwrap();
        assert_eq!(again.paid, paid.paid, "a second claim changes nothing");
        assert!(store.mark_paid(&[3; 32], 1, &[9; 32], 5).unwrap().is_none());
        drop(store);
        let store = Invoices::open(Arc::new(RedbKv::open(&path).unwrap()));
        let labels: Vec<_> = store.list().unwrap().into_iter().map(|i| i.label).collect();
        assert_eq!(labels, ["a", "b"]);
        assert_eq!(store.next_index().unwrap(), 3);
        assert!(store.by_hash(&[2; 32]).unwrap().unwrap().paid.is_some());
    }
}
