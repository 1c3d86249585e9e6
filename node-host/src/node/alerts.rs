//! Events raised about the node itself rather than a payment:
//!
//! - `signer_needed`: a signing request has waited `after` with no signer attached, so an
//!   app can wake its signer (an incoming payment for a phone whose signer sleeps, say).
//!   Raised once per waiting episode: the episode ends when a signer attaches or nothing
//!   waits any more.
//! - `node_stuck`: the node has processed blocks more than `after_blocks` behind the chain's
//!   tip for two looks in a row (Greenlight's `blockheight`, `headheight`, `lag`). Raised
//!   once until the node catches up.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Node;
use super::chain_health::{ChainStatus, HEALTH_EVERY};

impl Node {
    /// Puts an event in the outbox, off the async threads; whether it is there.
    async fn raise(&self, event_type: &'static str, fields: serde_json::Value) -> bool {
        let outbox = self.outbox.clone();
        let why = match tokio::task::spawn_blocking(move || outbox.raise(None, event_type, fields))
            .await
        {
            Ok(Ok(_)) => return true,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::error!(error = %why, event_type, "cannot raise the event");
        false
    }

    /// Raises `signer_needed` as the module says, until `stop`.
    pub async fn raise_signer_needed(&self, after: Duration, stop: CancellationToken) {
        let mut signers = self.stage.watch_signers();
        let mut waiting = self.stage.watch_waiting();
        loop {
            // Wait for an episode: requests waiting, no signer.
            loop {
                if *waiting.borrow_and_update() > 0 && signers.count() == 0 {
                    break;
                }
                tokio::select! {
                    _ = waiting.changed() => {}
                    () = signers.changed() => {}
                    () = stop.cancelled() => return,
                }
            }
            let deadline = tokio::time::Instant::now() + after;
            let needed = loop {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => break true,
                    _ = waiting.changed() => if *waiting.borrow_and_update() == 0 { break false },
                    () = signers.changed() => if signers.count() > 0 { break false },
                    () = stop.cancelled() => return,
                }
            };
            if needed {
                let requests = *waiting.borrow();
                let fields = serde_json::json!({
                    "pending_requests": requests,
                    "waiting_ms": after.as_millis() as u64,
                });
                if self.raise("signer_needed", fields).await {
                    tracing::info!(requests, "no signer: signer_needed raised");
                }
                // The episode goes on until a signer comes or nothing waits.
                loop {
                    if signers.count() > 0 || *waiting.borrow_and_update() == 0 {
                        break;
                    }
                    tokio::select! {
                        _ = waiting.changed() => {}
                        () = signers.changed() => {}
                        () = stop.cancelled() => return,
                    }
                }
            }
        }
    }

    /// Raises `node_stuck` as the module says, until `stop`.
    pub async fn raise_stuck(&self, after_blocks: u64, stop: CancellationToken) {
        let mut behind_before = false;
        let mut raised = false;
        loop {
            tokio::select! {
                () = tokio::time::sleep(HEALTH_EVERY) => {}
                () = stop.cancelled() => return,
            }
            let (ChainStatus::Answers { height: head, .. }, Some(ours)) =
                (self.chain_status(), *self.height.borrow())
            else {
                continue;
            };
            let lag = u64::from(head.saturating_sub(ours));
            let behind = lag > after_blocks;
            if behind && behind_before && !raised {
                let fields = serde_json::json!({
                    "blockheight": ours,
                    "headheight": head,
                    "lag": lag,
                });
                if self.raise("node_stuck", fields).await {
                    tracing::warn!(ours, head, lag, "the node is behind the chain: node_stuck raised");
                    raised = true;
                }
            }
            if !behind {
                raised = false;
            }
            behind_before = behind;
        }
    }
}
