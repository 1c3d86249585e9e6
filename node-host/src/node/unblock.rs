//! Retrying the signing LDK put off: LDK 0.2 returns to a channel whose signer said "not
//! yet" only when told to (`signer_unblocked`). The channel signer notes when it said so;
//! this task tells LDK once an answer has come in, a signer has attached, or — while one is
//! attached and something is owed — every second, since a signer answering a request ahead
//! of the owed one does not always let it through at once. A signer attaching is also the
//! moment to sweep what waited for one.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::ldk::{ChainMonitor, ChannelManager, PeerManager};
use super::sweep::{self, Sweeper};
use crate::signer_link::channel::Channels;
use crate::signer_link::stage::Stage;

/// How often an owed retry is made while a signer is attached and nothing else happens.
const AGAIN: Duration = Duration::from_secs(1);

/// Runs until `stop`.
pub async fn run(
    channels: Arc<Channels>,
    stage: Arc<Stage>,
    manager: Arc<ChannelManager>,
    monitor: Arc<ChainMonitor>,
    peers: Arc<PeerManager>,
    sweeper: Arc<Sweeper>,
    stop: CancellationToken,
) {
    let mut answers = stage.watch_answers();
    let mut signers = stage.watch_signers();
    loop {
        let attached = signers.count() > 0;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = answers.changed() => {}
            _ = signers.changed() => {
                if !attached && signers.count() > 0 {
                    let sweeper = sweeper.clone();
                    tokio::spawn(async move { sweep::sweep_due(&sweeper).await });
                }
            }
            _ = tokio::time::sleep(AGAIN), if attached => {}
        }
        if !channels.take_owed_unblock() {
            continue;
        }
        let (cm, mon, pm) = (manager.clone(), monitor.clone(), peers.clone());
        // LDK's locks may be held by a thread waiting on a signature: off the async workers.
        let _ = tokio::task::spawn_blocking(move || {
            cm.signer_unblocked(None);
            mon.signer_unblocked(None);
            pm.process_events();
        })
        .await;
    }
}
