//! A handle to stop the scheduler gracefully: every task holding a clone can wait for it.

use tokio::sync::watch;

/// Triggers and observes shutdown.
#[derive(Clone)]
pub struct Shutdown {
    tx: std::sync::Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
    failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A handle that has not been triggered.
    pub fn new() -> Self {
        let (tx, rx) = watch::channel(false);
        Shutdown {
            tx: std::sync::Arc::new(tx),
            rx,
            failed: Default::default(),
        }
    }

    /// Asks everything to stop.
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }

    /// Asks everything to stop because something cannot go on (the scheduler then exits
    /// with an error).
    pub fn fail(&self) {
        self.failed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.trigger();
    }

    /// Whether the stop was asked for by [`Shutdown::fail`].
    pub fn failed(&self) -> bool {
        self.failed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether shutdown has been asked for.
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once shutdown has been asked for.
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        // An error means every sender is gone, which is also a reason to stop.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}
