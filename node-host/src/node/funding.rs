//! Opening a channel when the keys are on the signer.
//!
//! VLS signs a funding transaction only once the channel's first commitment is
//! countersigned, so the order is: LDK asks for funding → the wallet builds the unsigned
//! transaction (all inputs segwit, so its txid is final) → LDK gets the outpoint
//! (`unsafe_manual_funding_transaction_generated`) and exchanges the first commitment
//! signatures → `FundingTxBroadcastSafe` → the signer signs the wallet's inputs → broadcast.
//! Each step answers the `FundChannel` call that started it, through this registry.

use std::collections::HashMap;
use std::sync::Mutex;

use lightning_signer::bitcoin::psbt::Psbt;
use lightning_signer::bitcoin::secp256k1::PublicKey;
use lightning_signer::bitcoin::{Amount, OutPoint, ScriptBuf, Transaction};
use lightning_signer::lightning::chain::chaininterface::BroadcasterInterface;
use lightning_signer::lightning::ln::types::ChannelId;
use tokio::sync::oneshot;

use crate::node::ldk::{self, Broadcaster};
use crate::node::wallet::Wallet;

/// A channel funded and broadcast.
#[derive(Debug, Clone)]
pub struct Funded {
    /// The funding transaction, signed.
    pub tx: Transaction,
    /// Its output that funds the channel.
    pub outnum: u32,
    /// The channel's id.
    pub channel_id: ChannelId,
}

struct Pending {
    sat_per_kw: u32,
    psbt: Option<Psbt>,
    done: Option<oneshot::Sender<Result<Funded, String>>>,
}

/// Channel fundings under way, by the user channel id the `FundChannel` call chose.
#[derive(Default)]
pub struct Fundings {
    pending: Mutex<HashMap<u128, Pending>>,
}

impl Fundings {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u128, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a funding; the receiver gets its outcome.
    pub fn start(
        &self,
        user_channel_id: u128,
        sat_per_kw: u32,
    ) -> oneshot::Receiver<Result<Funded, String>> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(
            user_channel_id,
            Pending {
                sat_per_kw,
                psbt: None,
                done: Some(tx),
            },
        );
        rx
    }

    /// Forgets a funding whose call gave up before LDK asked for anything.
    pub fn abandon(&self, user_channel_id: u128) {
        self.lock().remove(&user_channel_id);
    }

    fn finish(&self, user_channel_id: u128, outcome: Result<Funded, String>) {
        if let Some(mut p) = self.lock().remove(&user_channel_id)
            && let Some(done) = p.done.take()
        {
            let _ = done.send(outcome);
        }
    }

    /// Outpoints already promised to other fundings under way.
    fn reserved(&self) -> Vec<OutPoint> {
        self.lock()
            .values()
            .filter_map(|p| p.psbt.as_ref())
            .flat_map(|p| p.unsigned_tx.input.iter().map(|i| i.previous_output))
            .collect()
    }

    /// `FundingGenerationReady`: builds the unsigned funding transaction and hands LDK its
    /// outpoint (which has the signer sign the peer's first commitment).
    #[allow(clippy::too_many_arguments)]
    pub fn generate(
        &self,
        cm: &ldk::ChannelManager,
        wallet: &Wallet,
        user_channel_id: u128,
        temporary_channel_id: ChannelId,
        counterparty: PublicKey,
        value: Amount,
        script: ScriptBuf,
    ) {
        let Some(sat_per_kw) = self.lock().get(&user_channel_id).map(|p| p.sat_per_kw) else {
            tracing::warn!(%temporary_channel_id, "a channel to fund that no FundChannel call asked for: closing it");
            let _ = cm.force_close_broadcasting_latest_txn(
                &temporary_channel_id,
                &counterparty,
                "no funding".into(),
            );
            return;
        };
        let fail = |why: String| {
            let _ = cm.force_close_broadcasting_latest_txn(
                &temporary_channel_id,
                &counterparty,
                why.clone(),
            );
            self.finish(user_channel_id, Err(why));
        };
        let psbt = match wallet.build_payment(script.clone(), value, sat_per_kw, &self.reserved()) {
            Ok(p) => p,
            Err(e) => return fail(format!("cannot fund the channel: {e}")),
        };
        let txid = psbt.unsigned_tx.compute_txid();
        let Some(vout) = psbt
            .unsigned_tx
            .output
            .iter()
            .position(|o| o.script_pubkey == script && o.value == value)
        else {
            return fail("the funding transaction lacks the channel's output".into());
        };
        if let Some(p) = self.lock().get_mut(&user_channel_id) {
            p.psbt = Some(psbt);
        }
        let outpoint = lightning_signer::lightning::chain::transaction::OutPoint {
            txid,
            index: vout as u16,
        };
        if let Err(e) = cm.unsafe_manual_funding_transaction_generated(
            temporary_channel_id,
            counterparty,
            outpoint,
        ) {
            self.finish(
                user_channel_id,
                Err(format!("LDK refused the funding: {e:?}")),
            );
        }
    }

    /// `FundingTxBroadcastSafe`: the signer signs the wallet's inputs, and the transaction
    /// is broadcast.
    pub fn sign_and_broadcast(
        &self,
        keys: &crate::signer_link::keys::RemoteKeys,
        wallet: &Wallet,
        broadcaster: &Broadcaster,
        user_channel_id: u128,
        channel_id: ChannelId,
        funding_vout: u32,
    ) -> Result<(), String> {
        let Some(psbt) = self
            .lock()
            .get(&user_channel_id)
            .and_then(|p| p.psbt.clone())
        else {
            return Err(format!(
                "no funding transaction kept for channel {channel_id}"
            ));
        };
        let inputs = wallet
            .inputs_of(&psbt)
            .ok_or("a funding input is no longer the wallet's")?;
        match keys.sign_wallet_spend(psbt, &inputs) {
            Ok(tx) => {
                wallet.sent(tx.clone());
                broadcaster.broadcast_transactions(&[&tx]);
                tracing::info!(%channel_id, txid = %tx.compute_txid(), "funding transaction broadcast");
                self.finish(
                    user_channel_id,
                    Ok(Funded {
                        tx,
                        outnum: funding_vout,
                        channel_id,
                    }),
                );
                Ok(())
            }
            Err(reason) => {
                let why = format!("the signer refused the funding transaction: {reason}");
                self.finish(user_channel_id, Err(why.clone()));
                Err(why)
            }
        }
    }

    /// The channel closed before it was funded: its call learns why.
    pub fn closed(&self, user_channel_id: u128, reason: String) {
        self.finish(user_channel_id, Err(reason));
    }
}
