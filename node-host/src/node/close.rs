//! Closing a channel: cooperatively (both signers sign the closing transaction), or
//! unilaterally, broadcasting our latest commitment as the signer signs it, after CLN's
//! `unilateraltimeout` if the cooperative close has not completed by then.
//!
//! After a force close the channel's monitor claims what is ours on chain (our HTLC
//! transactions, signed by the signer) and the sweeper returns our delayed outputs to the
//! wallet once `to_self_delay` has passed.

use std::time::Duration;

use lightning_signer::bitcoin::{OutPoint, Transaction};
use lightning_signer::lightning::ln::channel_state::ChannelDetails;
use tokio::sync::oneshot;

use super::channels::pick;
use super::{ChannelRef, Node, NodeError, Running};

/// How long a closing negotiation may take.
const CLOSING: Duration = Duration::from_secs(60);
/// How often a force close looks for its broadcast commitment.
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// How a channel closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseKind {
    /// Both sides signed a closing transaction.
    Mutual,
    /// We broadcast our commitment.
    Unilateral,
    /// The channel was never funded: nothing went on chain.
    Unopened,
}

/// What a close did.
#[derive(Debug, Clone)]
pub struct Closed {
    /// How it closed.
    pub kind: CloseKind,
    /// The closing transaction (or our commitment), if one was broadcast.
    pub tx: Option<Transaction>,
}

impl Node {
    /// Closes the channel `which`. With `force_after`, a cooperative close is tried for
    /// that long (at once not at all if the peer is not connected), then our commitment
    /// is broadcast; without it the close is cooperative only, and needs the peer.
    pub async fn close(
        &self,
        which: &ChannelRef,
        force_after: Option<Duration>,
    ) -> Result<Closed, NodeError> {
        let running = self.with_signer("closing transaction").await?;
        let cm = running.ldk.channel_manager.clone();
        let channels = self.on_ldk(move || cm.list_channels()).await?;
        let channel = pick(&channels, which.0.trim())?.clone();
        let peer = channel.counterparty.node_id;
        let pm = running.peer_manager.clone();
        let connected = self
            .on_ldk(move || pm.peer_by_node_id(&peer))
            .await?
            .is_some();
        let mut closed = self.closings.wait(channel.channel_id);
        if connected {
            let (cm, id) = (running.ldk.channel_manager.clone(), channel.channel_id);
            let started = self.on_ldk(move || cm.close_channel(&id, &peer)).await?;
            match (started, force_after) {
                (Ok(()), _) => {
                    let wait = force_after.unwrap_or(CLOSING);
                    if let Ok(reason) = tokio::time::timeout(wait, &mut closed).await {
                        let reason = reason
                            .map_err(|_| NodeError::Internal("the close was dropped".into()))?;
                        tracing::info!(channel = %id, %reason, "channel closed by request");
                        return Ok(self.closed_as(&running, &channel, CloseKind::Mutual));
                    }
                    if force_after.is_none() {
                        return Err(NodeError::Unreachable(format!(
                            "the close did not complete within {} s; see ListPeerChannels",
                            CLOSING.as_secs()
                        )));
                    }
                }
                (Err(e), None) => {
                    return Err(NodeError::Precondition(format!(
                        "cannot close the channel: {e:?}"
                    )));
                }
                (Err(e), Some(_)) => {
                    tracing::info!(channel = %id, error = ?e, "no cooperative close: forcing it");
                }
            }
        } else if force_after.is_none() {
            return Err(NodeError::Precondition(format!(
                "{peer} is not connected: a cooperative close needs the peer (give unilateraltimeout to force the close)"
            )));
        }
        self.force_close(&running, &channel, closed).await
    }

    /// Broadcasts our latest commitment of `channel`; returns once it is broadcast.
    async fn force_close(
        &self,
        running: &Running,
        channel: &ChannelDetails,
        closed: oneshot::Receiver<String>,
    ) -> Result<Closed, NodeError> {
        let (cm, id, peer) = (
            running.ldk.channel_manager.clone(),
            channel.channel_id,
            channel.counterparty.node_id,
        );
        let forced = self
            .on_ldk(move || {
                cm.force_close_broadcasting_latest_txn(
                    &id,
                    &peer,
                    "the channel was force-closed by its owner".into(),
                )
            })
            .await?;
        // The channel may have closed meanwhile (the cooperative close completing): then
        // it is closed, and what closed it is on chain.
        if let Err(e) = forced {
            tracing::info!(channel = %id, error = ?e, "force close: the channel was gone");
        }
        let reason = tokio::time::timeout(CLOSING, closed)
            .await
            .map_err(|_| {
                NodeError::Unreachable(format!(
                    "the channel did not close within {} s; see ListPeerChannels",
                    CLOSING.as_secs()
                ))
            })?
            .map_err(|_| NodeError::Internal("the close was dropped".into()))?;
        tracing::info!(channel = %id, %reason, "channel closed by request");
        let Some(funding) = channel.funding_txo else {
            return Ok(Closed {
                kind: CloseKind::Unopened,
                tx: None,
            });
        };
        // The commitment goes out once the signer has signed it (the monitor asks).
        let funding = funding.into_bitcoin_outpoint();
        let tx = tokio::time::timeout(CLOSING, broadcast_spending(running, funding))
            .await
            .map_err(|_| {
                NodeError::Unreachable(format!(
                    "the channel closed, but its commitment was not signed within {} s; it is broadcast once the signer signs it",
                    CLOSING.as_secs()
                ))
            })?;
        let kind = if tx.lock_time.to_consensus_u32() == 0 {
            // The cooperative close won the race.
            CloseKind::Mutual
        } else {
            CloseKind::Unilateral
        };
        Ok(Closed { kind, tx: Some(tx) })
    }

    fn closed_as(&self, running: &Running, channel: &ChannelDetails, kind: CloseKind) -> Closed {
        match channel.funding_txo {
            None => Closed {
                kind: CloseKind::Unopened,
                tx: None,
            },
            Some(o) => Closed {
                kind,
                tx: running.broadcaster.spending(o.into_bitcoin_outpoint()),
            },
        }
    }
}

/// The transaction broadcast that spends `funding`, once there is one.
async fn broadcast_spending(running: &Running, funding: OutPoint) -> Transaction {
    loop {
        if let Some(tx) = running.broadcaster.spending(funding) {
            return tx;
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
}
