//! The node's invoices, by label (CLN's key: a label names one invoice for good).
//!
//! LDK makes invoices statelessly (the payment secret and, unless the caller chose it, the
//! preimage are derived from the signer's inbound-payment key), so what is kept here is
//! what the node API reports: the label, the invoice text, the amounts and whether it was
//! paid. A caller-chosen preimage is kept too, because nothing else could claim the payment.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::schema::{
    INVOICE_COUNTERS as COUNTERS, INVOICE_LABELS_BY_HASH as BY_HASH, INVOICES_BY_LABEL as BY_LABEL,
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
    db: Database,
}

impl Invoices {
    /// Opens (creating) the store.
    pub fn open(path: &Path) -> Result<Self, InvoiceError> {
        let db = super::schema::open(path).map_err(err)?;
        let txn = db.begin_write().map_err(err)?;
        txn.open_table(BY_LABEL).map_err(err)?;
        txn.open_table(BY_HASH).map_err(err)?;
        txn.open_table(COUNTERS).map_err(err)?;
        txn.commit().map_err(err)?;
        Ok(Invoices { db })
    }

    /// The invoice labelled `label`.
    pub fn get(&self, label: &str) -> Result<Option<Invoice>, InvoiceError> {
        super::record(&self.db, BY_LABEL, label).map_err(err)
    }

    /// The invoice for `payment_hash`.
    pub fn by_hash(&self, payment_hash: &[u8; 32]) -> Result<Option<Invoice>, InvoiceError> {
        let label = {
            let txn = self.db.begin_read().map_err(err)?;
            let table = txn.open_table(BY_HASH).map_err(err)?;
            match table.get(payment_hash).map_err(err)? {
                Some(l) => l.value().to_string(),
                None => return Ok(None),
            }
        };
        self.get(&label)
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
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(COUNTERS).map_err(err)?;
        Ok(table.get("created").map_err(err)?.map_or(0, |v| v.value()) + 1)
    }

    /// Stores a new invoice, giving it the next `created_index`; refuses a label in use.
    pub fn insert(&self, mut invoice: Invoice, hash: [u8; 32]) -> Result<Invoice, InvoiceError> {
        let txn = self.db.begin_write().map_err(err)?;
        {
            let mut by_label = txn.open_table(BY_LABEL).map_err(err)?;
            if by_label.get(invoice.label.as_str()).map_err(err)?.is_some() {
                return Err(InvoiceError::DuplicateLabel(invoice.label));
            }
            let mut counters = txn.open_table(COUNTERS).map_err(err)?;
            invoice.created_index = super::next(&mut counters, "created").map_err(err)?;
            let json = serde_json::to_vec(&invoice).map_err(err)?;
            by_label
                .insert(invoice.label.as_str(), json.as_slice())
                .map_err(err)?;
            let mut by_hash = txn.open_table(BY_HASH).map_err(err)?;
            by_hash.insert(&hash, invoice.label.as_str()).map_err(err)?;
        }
        txn.commit().map_err(err)?;
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
        let txn = self.db.begin_write().map_err(err)?;
        let invoice = {
            let label = match txn
                .open_table(BY_HASH)
                .map_err(err)?
                .get(hash)
                .map_err(err)?
            {
                Some(l) => l.value().to_string(),
                None => return Ok(None),
            };
            let mut by_label = txn.open_table(BY_LABEL).map_err(err)?;
            let mut invoice: Invoice = match by_label.get(label.as_str()).map_err(err)? {
                Some(v) => serde_json::from_slice(v.value()).map_err(err)?,
                None => return Ok(None),
            };
            if invoice.paid.is_some() {
                return Ok(Some(invoice));
            }
            let mut counters = txn.open_table(COUNTERS).map_err(err)?;
            let pay_index = super::next(&mut counters, "paid").map_err(err)?;
            invoice.paid = Some(Paid {
                amount_received_msat,
                paid_at,
                pay_index,
                preimage: hex::encode(preimage),
            });
            let json = serde_json::to_vec(&invoice).map_err(err)?;
            by_label
                .insert(label.as_str(), json.as_slice())
                .map_err(err)?;
            invoice
        };
        txn.commit().map_err(err)?;
        Ok(Some(invoice))
    }

    /// Every invoice, oldest first.
    pub fn list(&self) -> Result<Vec<Invoice>, InvoiceError> {
        let mut all: Vec<Invoice> = super::records(&self.db, BY_LABEL).map_err(err)?;
        all.sort_by_key(|i| i.created_index);
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let path = dir.path().join("i.redb");
        let store = Invoices::open(&path).unwrap();
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
        let store = Invoices::open(&path).unwrap();
        let labels: Vec<_> = store.list().unwrap().into_iter().map(|i| i.label).collect();
        assert_eq!(labels, ["a", "b"]);
        assert_eq!(store.next_index().unwrap(), 3);
        assert!(store.by_hash(&[2; 32]).unwrap().unwrap().paid.is_some());
    }
}
