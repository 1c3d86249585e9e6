//! Calls waiting for a channel to close.

use std::collections::HashMap;
use std::sync::Mutex;

use lightning_signer::lightning::ln::types::ChannelId;
use tokio::sync::oneshot;

/// Calls waiting, by channel.
#[derive(Default)]
pub struct Closings {
    waiting: Mutex<HashMap<ChannelId, Vec<oneshot::Sender<String>>>>,
}

impl Closings {
    /// Waits for `channel` to close; the receiver gets LDK's reason.
    pub fn wait(&self, channel: ChannelId) -> oneshot::Receiver<String> {
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(channel)
            .or_default()
            .push(tx);
        rx
    }

    /// `channel` closed.
    pub fn closed(&self, channel: ChannelId, reason: String) {
        let waiters = self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&channel)
            .unwrap_or_default();
        for w in waiters {
            let _ = w.send(reason.clone());
        }
    }
}
