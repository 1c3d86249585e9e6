//! Paying a BOLT11 invoice over the node's channels.
//!
//! The signer is asked first (`PreapproveInvoice`): it approves only an invoice that a Pay
//! request signed by one of the tenant's devices names (the signed request travels with
//! the signing request). A refusal ends the call with the signer's reason before any HTLC
//! exists; without this step VLS would refuse the commitment later and leave the HTLC
//! hanging.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use lightning_signer::bitcoin::hashes::Hash;
use lightning_signer::bitcoin::secp256k1::PublicKey;
use lightning_signer::lightning::ln::channelmanager::{
    Bolt11PaymentError, PaymentId, Retry, RetryableSendFailure,
};
use lightning_signer::lightning::routing::router::RouteParametersConfig;
use lightning_signer::lightning_invoice::Bolt11Invoice;

use super::{Node, NodeError, Running};
use crate::store::payments::{Payment, PaymentStatus};

/// How long a payment is retried unless the caller says (CLN's `retry_for` default); the
/// call waits for its outcome that long, and a little more.
pub const RETRY_FOR: Duration = Duration::from_secs(60);
/// The most a caller may ask a payment to be retried.
const MAX_RETRY_FOR: Duration = Duration::from_secs(3600);
/// How long a payment with no route waits before it is tried again, within
/// the payment's retry time, unless the usable channels change first (a channel coming back as its
/// peer reconnects after a wake-up, or a balance settling after a payment just made or
/// received).
const ROUTE_RETRY: Duration = Duration::from_millis(200);
/// How often the usable channels are looked at meanwhile (LDK's list, no route-finding).
const CHANNELS_LOOK: Duration = Duration::from_millis(10);

/// A payment made.
#[derive(Debug, Clone)]
pub struct Paid {
    /// The payment as kept.
    pub payment: Payment,
    /// The payee.
    pub destination: PublicKey,
    /// The payment hash.
    pub hash: [u8; 32],
    /// What the payee gets.
    pub amount_msat: u64,
}

fn stored(e: impl std::fmt::Display) -> NodeError {
    NodeError::Internal(e.to_string())
}

impl Node {
    /// Pays `bolt11`; `amount_msat` only for an invoice that names no amount; retried for
    /// `retry_for` (at most an hour). Returns once the payee released the preimage, or fails
    /// with why it did not.
    pub async fn pay(
        &self,
        bolt11: &str,
        amount_msat: Option<u64>,
        retry_for: Duration,
    ) -> Result<Paid, NodeError> {
        let retry_for = retry_for.min(MAX_RETRY_FOR);
        let invalid = |m: String| NodeError::Invalid(m);
        let bolt11 = bolt11.trim();
        let invoice = Bolt11Invoice::from_str(bolt11)
            .map_err(|e| invalid(format!("bolt11 is not a BOLT11 invoice: {e}")))?;
        if invoice.network() != self.network {
            return Err(invalid(format!(
                "the invoice is for {:?}, this node is on {}",
                invoice.network(),
                self.network
            )));
        }
        if invoice.is_expired() {
            return Err(invalid("the invoice has expired".into()));
        }
        let amount_msat = match (invoice.amount_milli_satoshis(), amount_msat) {
            (Some(a), None) => a,
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "the invoice names its amount: give no amount_msat".into(),
                ));
            }
            (None, Some(a)) if a > 0 => a,
            (None, _) => {
                return Err(invalid(
                    "the invoice names no amount: give amount_msat".into(),
                ));
            }
        };
        let explicit = invoice.amount_milli_satoshis().is_none().then_some(amount_msat);
        let hash = invoice.payment_hash().to_byte_array();
        if let Some(p) = self.payments.get(&hash).map_err(stored)?
            && p.status != PaymentStatus::Failed
        {
            return Err(NodeError::Precondition(format!(
                "this invoice was paid already ({:?})",
                p.status
            )));
        }
        let running = self.with_signer("payment").await?;

        // The signer's word first.
        let (keys, text) = (running.ldk.keys.clone(), bolt11.to_string());
        match self.on_ldk(move || keys.preapprove_invoice(&text)).await? {
            Ok(true) => {}
            Ok(false) => {
                return Err(NodeError::Refused {
                    what: "payment".into(),
                    reason: "the signer did not approve this invoice".into(),
                });
            }
            Err(reason) => {
                return Err(NodeError::Refused {
                    what: "payment".into(),
                    reason,
                });
            }
        }

        let destination = invoice.recover_payee_pub_key();
        self.payments
            .insert(
                hash,
                Payment {
                    bolt11: bolt11.to_string(),
                    payment_hash: hex::encode(hash),
                    destination: destination.to_string(),
                    amount_msat,
                    amount_sent_msat: None,
                    created_at: crate::now_secs(),
                    completed_at: None,
                    preimage: None,
                    created_index: 0,
                    status: PaymentStatus::Pending,
                    failure: None,
                },
            )
            .map_err(stored)?;
        let outcome = self.payments.wait(hash);
        // LDK retries a payment whose paths fail, but not one it found no route for at the
        // start (nothing is pending then, so the same id can be sent again).
        let until = tokio::time::Instant::now() + retry_for;
        let sent = loop {
            let (cm, invoice) = (running.ldk.channel_manager.clone(), invoice.clone());
            let peers = running.peer_manager.clone();
            let sent = self
                .on_ldk(move || {
                    let sent = cm.pay_for_bolt11_invoice(
                        &invoice,
                        PaymentId(hash),
                        explicit,
                        RouteParametersConfig::default(),
                        Retry::Timeout(retry_for),
                    );
                    // The HTLC goes out now, not when the background processor next wakes
                    // (it persists the channel manager first: about 2 ms later).
                    if sent.is_ok() {
                        peers.process_events();
                    }
                    sent
                })
                .await?;
            match sent {
                Err(Bolt11PaymentError::SendingFailed(RetryableSendFailure::RouteNotFound))
                    if tokio::time::Instant::now() + ROUTE_RETRY < until =>
                {
                    tracing::debug!(hash = %hex::encode(hash), "no route yet; trying again");
                    self.usable_channels_change(&running, ROUTE_RETRY).await?;
                }
                sent => break sent,
            }
        };
        if let Err(e) = sent {
            let why = format!("cannot send the payment: {e:?}");
            let _ = self.payments.settle(hash, |p| {
                p.status = PaymentStatus::Failed;
                p.failure = Some(why.clone());
            });
            return Err(NodeError::Precondition(why));
        }
        let payment = match tokio::time::timeout(retry_for + Duration::from_secs(30), outcome).await
        {
            Ok(Ok(Ok(p))) => p,
            Ok(Ok(Err(why))) => return Err(NodeError::Precondition(why)),
            Ok(Err(_)) | Err(_) => {
                return Err(NodeError::Unreachable(
                    "the payment has no outcome yet; see ListPays".into(),
                ));
            }
        };
        Ok(Paid {
            payment,
            destination,
            hash,
            amount_msat,
        })
    }

    /// Returns once the usable channels (and what each can send) differ from now, or
    /// after `most`.
    async fn usable_channels_change(
        &self,
        running: &Arc<Running>,
        most: Duration,
    ) -> Result<(), NodeError> {
        let usable = |r: Arc<Running>| {
            move || {
                r.ldk
                    .channel_manager
                    .list_usable_channels()
                    .iter()
                    .map(|c| (c.channel_id, c.next_outbound_htlc_limit_msat))
                    .collect::<Vec<_>>()
            }
        };
        let before = self.on_ldk(usable(running.clone())).await?;
        let until = tokio::time::Instant::now() + most;
        while tokio::time::Instant::now() < until {
            tokio::time::sleep(CHANNELS_LOOK).await;
            if self.on_ldk(usable(running.clone())).await? != before {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Every outgoing payment, oldest first.
    pub fn payments(&self) -> Result<Vec<Payment>, NodeError> {
        self.payments.list().map_err(stored)
    }
}
