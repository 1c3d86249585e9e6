//! LDK's background processor and the node's answers to LDK's events.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lightning_background_processor::{
    GossipSync as Gossip, NO_LIQUIDITY_MANAGER, NO_ONION_MESSENGER, process_events_async,
};
use lightning_signer::bitcoin::Amount;
use lightning_signer::lightning::events::{Event, ReplayEvent};
use lightning_signer::lightning::types::payment::PaymentPreimage;
use tokio_util::sync::CancellationToken;

use super::Node;
use crate::node::ldk::{self, GossipSync, PeerManager};
use crate::node::sweep::Sweeper;
use crate::now_secs;
use crate::store::payments::PaymentStatus;

/// LDK's background processor: events, persistence of the channel manager, graph and
/// scorer, timers, peer message processing. Ends once `stop` turns true.
pub fn background(
    node: &ldk::LdkNode,
    peer_manager: Arc<PeerManager>,
    gossip: Arc<GossipSync>,
    sweeper: Arc<Sweeper>,
    handle: Node,
    stop: CancellationToken,
) -> impl Future<Output = Result<(), lightning_signer::lightning::io::Error>> + use<> {
    let channel_manager = node.channel_manager.clone();
    let tracker = sweeper.clone();
    let peers = peer_manager.clone();
    let handler = move |event: Event| {
        let channel_manager = channel_manager.clone();
        let peers = peers.clone();
        let handle = handle.clone();
        let sweeper = tracker.clone();
        async move {
            match event {
                // Tracked durably before the event counts as handled: a node-host killed
                // now still sweeps these after its restart.
                Event::SpendableOutputs {
                    outputs,
                    channel_id,
                    ..
                } => {
                    let count = outputs.len();
                    // Static outputs pay the wallet's own key: the wallet has them already.
                    match sweeper
                        .track_spendable_outputs(outputs, channel_id, true, None)
                        .await
                    {
                        Ok(()) => {
                            tracing::info!(count, ?channel_id, "outputs to sweep tracked");
                            crate::node::sweep::sweep_due(&sweeper).await;
                            Ok(())
                        }
                        Err(()) => {
                            tracing::error!("cannot store outputs to sweep; will retry");
                            Err(ReplayEvent())
                        }
                    }
                }
                event => on_event(event, &channel_manager, &peers, &handle),
            }
        }
    };
    let sleeper = move |d: Duration| {
        let stop = stop.clone();
        Box::pin(async move {
            tokio::select! {
                _ = tokio::time::sleep(d) => false,
                _ = stop.cancelled() => true,
            }
        })
    };
    process_events_async(
        node.store.clone(),
        handler,
        node.chain_monitor.clone(),
        node.channel_manager.clone(),
        NO_ONION_MESSENGER,
        Gossip::p2p(gossip),
        peer_manager,
        NO_LIQUIDITY_MANAGER,
        Some(sweeper),
        node.logger.clone(),
        Some(node.scorer.clone()),
        sleeper,
        false,
        || SystemTime::now().duration_since(UNIX_EPOCH).ok(),
    )
}

fn on_event(
    event: Event,
    channel_manager: &ldk::ChannelManager,
    peers: &PeerManager,
    handle: &Node,
) -> Result<(), ReplayEvent> {
    match event {
        Event::PaymentClaimable {
            payment_hash,
            purpose,
            amount_msat,
            ..
        } => {
            let preimage = match purpose.preimage() {
                Some(p) => Some(p),
                // An invoice made with the caller's preimage: LDK does not know it.
                None => match handle.invoices.chosen_preimage(&payment_hash.0) {
                    Ok(p) => p.map(PaymentPreimage),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the invoices; will retry");
                        return Err(ReplayEvent());
                    }
                },
            };
            if let Some(p) = preimage
                && handle.holds_claims()
            {
                tracing::warn!(hash = %payment_hash, "fault: leaving the payment unclaimed");
                handle.held_claims.lock().unwrap_or_else(|e| e.into_inner()).push(p);
                return Ok(());
            }
            match preimage {
                Some(p) => {
                    tracing::info!(hash = %payment_hash, amount_msat, "claiming a payment");
                    channel_manager.claim_funds(p);
                    // The preimage goes to the payer now, not after the events still
                    // queued are handled (the claim's own, with its store write, first).
                    peers.process_events();
                }
                None => {
                    tracing::warn!(hash = %payment_hash, "a payment for no invoice of ours: failing it back");
                    channel_manager.fail_htlc_backwards(&payment_hash);
                }
            }
        }
        Event::PaymentClaimed {
            payment_hash,
            amount_msat,
            purpose,
            ..
        } => {
            crate::usage::payment_received();
            let preimage = purpose.preimage().map(|p| p.0).or_else(|| {
                handle
                    .invoices
                    .chosen_preimage(&payment_hash.0)
                    .ok()
                    .flatten()
            });
            let Some(preimage) = preimage else {
                tracing::warn!(hash = %payment_hash, "claimed a payment without knowing its preimage");
                return Ok(());
            };
            let invoice = match handle
                .invoices
                .mark_paid(&payment_hash.0, amount_msat, &preimage, now_secs())
            {
                Ok(Some(i)) => {
                    tracing::info!(label = %i.label, amount_msat, "invoice paid");
                    Some(i)
                }
                Ok(None) => {
                    tracing::info!(hash = %payment_hash, amount_msat, "payment received");
                    None
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot record the payment; will retry");
                    return Err(ReplayEvent());
                }
            };
            // In the outbox before the event counts as handled, once per payment however
            // often LDK replays it: the webhook receiver hears of it exactly under one id.
            let fields = serde_json::json!({
                "payment_hash": hex::encode(payment_hash.0),
                "preimage": hex::encode(preimage),
                "amount_msat": amount_msat,
                "bolt11": invoice.as_ref().map(|i| i.bolt11.clone()),
                "label": invoice.as_ref().map(|i| i.label.clone()),
            });
            let once = format!("invoice_payment:{}", hex::encode(payment_hash.0));
            if let Err(e) = handle.outbox.raise(Some(&once), "invoice_payment", fields) {
                tracing::error!(error = %e, "cannot raise the payment's event; will retry");
                return Err(ReplayEvent());
            }
        }
        Event::FundingGenerationReady {
            temporary_channel_id,
            counterparty_node_id,
            channel_value_satoshis,
            output_script,
            user_channel_id,
        } => {
            let Some(running) = handle.current() else {
                return Err(ReplayEvent());
            };
            handle.fundings.generate(
                channel_manager,
                &running.wallet,
                user_channel_id,
                temporary_channel_id,
                counterparty_node_id,
                Amount::from_sat(channel_value_satoshis),
                output_script,
            );
        }
        Event::FundingTxBroadcastSafe {
            channel_id,
            user_channel_id,
            funding_txo,
            counterparty_node_id,
            ..
        } => {
            let Some(running) = handle.current() else {
                return Err(ReplayEvent());
            };
            if let Err(why) = handle.fundings.sign_and_broadcast(
                &running.ldk.keys,
                &running.wallet,
                &running.broadcaster,
                user_channel_id,
                channel_id,
                funding_txo.vout,
            ) {
                tracing::warn!(%channel_id, %why, "funding not signed: closing the channel");
                // Nothing is on chain yet: closing costs nothing and frees the inputs.
                let _ = channel_manager.force_close_broadcasting_latest_txn(
                    &channel_id,
                    &counterparty_node_id,
                    why,
                );
            }
        }
        Event::ChannelClosed {
            channel_id,
            user_channel_id,
            reason,
            ..
        } => {
            tracing::info!(%channel_id, %reason, "channel closed");
            handle
                .fundings
                .closed(user_channel_id, format!("the channel closed: {reason}"));
            handle.closings.closed(channel_id, reason.to_string());
        }
        Event::ChannelReady { channel_id, .. } => {
            tracing::info!(%channel_id, "channel ready");
        }
        Event::PaymentSent {
            payment_hash,
            payment_preimage,
            amount_msat,
            fee_paid_msat,
            ..
        } => {
            crate::usage::payment_sent();
            tracing::info!(hash = %payment_hash, "payment sent");
            let settled = handle.payments.settle(payment_hash.0, |p| {
                p.status = PaymentStatus::Complete;
                p.preimage = Some(hex::encode(payment_preimage.0));
                p.completed_at = Some(now_secs());
                p.amount_sent_msat =
                    Some(amount_msat.unwrap_or(p.amount_msat) + fee_paid_msat.unwrap_or(0));
            });
            if let Err(e) = settled {
                tracing::error!(error = %e, "cannot record the payment; will retry");
                return Err(ReplayEvent());
            }
        }
        Event::PaymentFailed {
            payment_id, reason, ..
        } => {
            let why = format!("the payment failed: {reason:?}");
            tracing::warn!(%why, "payment failed");
            let settled = handle.payments.settle(payment_id.0, |p| {
                p.status = PaymentStatus::Failed;
                p.failure = Some(why.clone());
                p.completed_at = Some(now_secs());
            });
            if let Err(e) = settled {
                tracing::error!(error = %e, "cannot record the payment; will retry");
                return Err(ReplayEvent());
            }
        }
        other => tracing::debug!(event = ?other, "LDK event"),
    }
    Ok(())
}

/// With fault injection on: claims the payments a `hold-claims` fault held, once it no
/// longer names this node-host (see `signer_link::faults`). Until `stop`.
pub async fn release_held_claims(manager: Arc<ldk::ChannelManager>, handle: Node, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        if handle.holds_claims() {
            continue;
        }
        let held: Vec<PaymentPreimage> =
            std::mem::take(&mut *handle.held_claims.lock().unwrap_or_else(|e| e.into_inner()));
        for p in held {
            tracing::warn!("fault lifted: claiming a payment held");
            let cm = manager.clone();
            let _ = tokio::task::spawn_blocking(move || cm.claim_funds(p)).await;
        }
    }
}
