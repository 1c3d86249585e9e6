//! Invoices: made by LDK, signed by the tenant's signer, kept by label.

use lightning_signer::bitcoin::hashes::Hash;
use lightning_signer::lightning::ln::channelmanager::Bolt11InvoiceParameters;
use lightning_signer::lightning_invoice::{Bolt11Invoice, SignOrCreationError};

use super::{Node, NodeError};
use crate::store::invoices::{Invoice, InvoiceError};

fn stored(e: InvoiceError) -> NodeError {
    match e {
        InvoiceError::DuplicateLabel(l) => NodeError::DuplicateLabel(l),
        e => NodeError::Internal(e.to_string()),
    }
}

impl Node {
    /// Makes an invoice labelled `label` (a label names one invoice for good), signed by the
    /// signer, and keeps it; `preimage` is the caller's, when it chose one. Returns the
    /// invoice kept and the invoice itself.
    pub async fn create_invoice(
        &self,
        params: Bolt11InvoiceParameters,
        label: String,
        description: String,
        preimage: Option<[u8; 32]>,
    ) -> Result<(Invoice, Bolt11Invoice), NodeError> {
        if self.invoices.get(&label).map_err(stored)?.is_some() {
            return Err(NodeError::DuplicateLabel(label));
        }
        let running = self.with_signer("invoice").await?;
        let made = {
            let running = running.clone();
            self.on_ldk(move || running.ldk.channel_manager.create_bolt11_invoice(params))
                .await?
        };
        let bolt11 = match made {
            Ok(i) => i,
            Err(SignOrCreationError::SignError(())) => {
                return Err(match running.ldk.keys.take_refusal() {
                    Some(reason) => NodeError::Refused {
                        what: "invoice".into(),
                        reason,
                    },
                    None => NodeError::SignerTimeout("invoice".into()),
                });
            }
            Err(SignOrCreationError::CreationError(e)) => {
                return Err(NodeError::Invalid(format!("cannot make this invoice: {e}")));
            }
        };
        let expires_at = bolt11.duration_since_epoch().as_secs() + bolt11.expiry_time().as_secs();
        let hash = bolt11.payment_hash().to_byte_array();
        let kept = self
            .invoices
            .insert(
                Invoice {
                    label,
                    bolt11: bolt11.to_string(),
                    payment_hash: hex::encode(hash),
                    amount_msat: bolt11.amount_milli_satoshis(),
                    description,
                    expires_at,
                    created_index: 0,
                    preimage: preimage.map(hex::encode),
                    paid: None,
                },
                hash,
            )
            .map_err(stored)?;
        Ok((kept, bolt11))
    }

    /// Every invoice, oldest first.
    pub fn invoices(&self) -> Result<Vec<Invoice>, NodeError> {
        self.invoices.list().map_err(stored)
    }
}
