//! Receiving without LDK's forwarding delay, for a node that does not forward.
//!
//! LDK's background processor handles received HTLCs with the forwards, after a randomised
//! delay (log-normal, about 50 ms mean, up to seconds): it batches forwards and hides a
//! forwarding node's timing. A node with only unannounced channels that refuses forwards
//! to private channels (node-host's configuration) is never a hop but the last, so the delay
//! hides nothing and only slows each payment received. This task processes them at once.
//! (What an observer learns: a payee that settles at once is a payee, not a hop; a node
//! that cannot forward is that already.)

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::ldk::ChannelManager;

/// How often the task looks. LDK has no notification for "an HTLC waits" that another
/// waiter can share (its event notifier's wake-up is consumed by whoever polls it first, and
/// the background processor must get it), so this looks: a cheap check.
const LOOK_EVERY: Duration = Duration::from_millis(5);

/// Runs until `stop`.
pub async fn run(manager: Arc<ChannelManager>, forwards_to_private: bool, stop: CancellationToken) {
    if forwards_to_private {
        return;
    }
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(LOOK_EVERY) => {}
        }
        if !manager.needs_pending_htlc_processing() {
            continue;
        }
        let m = manager.clone();
        // LDK's locks may be held by a thread waiting on a signature: off the async workers.
        let _ = tokio::task::spawn_blocking(move || {
            if m.list_channels().iter().all(|c| !c.is_announced) {
                m.process_pending_htlc_forwards();
            }
        })
        .await;
    }
}
