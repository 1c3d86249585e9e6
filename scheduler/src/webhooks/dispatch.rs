//! Delivering what is queued: one worker per webhook, so a slow or dead receiver holds up
//! only its own deliveries, never another webhook's or another tenant's.
//!
//! A worker takes up to [`IN_FLIGHT`] due deliveries of its webhook at a time, signs each
//! with the webhook's secret as it stands at that moment (so a rotation takes effect with
//! the next attempt), posts them, and records each outcome in the store: delivered (a 2xx),
//! due again after the next wait of the retry schedule with jitter (5xx, 429, a timeout, a
//! network error), or given up (any other status, redirects included, or the last attempt
//! failed). With nothing due it sleeps until the next delivery is, or until it is poked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use url::Url;

use super::settings::WebhookSettings;
use super::{sign, target};
use crate::shutdown::Shutdown;
use crate::state::blocking;
use crate::store::Store;
use crate::store::records::{DeliveryRecord, WebhookRecord};
use crate::store::webhooks::DeliveryKey;

/// Deliveries one webhook has in flight at most.
pub const IN_FLIGHT: usize = 8;

/// How long a worker with nothing due sleeps before it looks again anyway.
const IDLE_LOOK: Duration = Duration::from_secs(60);

/// What an attempt came to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The receiver took it (2xx).
    Delivered,
    /// Worth another try later: 5xx, 429, a timeout, no connection.
    Retry(String),
    /// The receiver refused it (another status): trying again would not help.
    Refused(String),
}

/// The webhooks' workers.
pub struct Dispatcher {
    store: Store,
    settings: WebhookSettings,
    client: reqwest::Client,
    workers: Mutex<HashMap<u64, Arc<Notify>>>,
    shutdown: Shutdown,
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `wait` ±20%, so receivers coming back are not met by every retry at once.
fn jittered(wait: Duration) -> Duration {
    let mut b = [0u8; 2];
    let r = if getrandom::getrandom(&mut b).is_ok() {
        u16::from_le_bytes(b) as f64 / u16::MAX as f64
    } else {
        0.5
    };
    wait.mul_f64(0.8 + 0.4 * r)
}

/// Which outcome an HTTP status is.
fn classify(status: reqwest::StatusCode) -> Outcome {
    if status.is_success() {
        Outcome::Delivered
    } else if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Outcome::Retry(format!("HTTP {status}"))
    } else {
        Outcome::Refused(format!("HTTP {status}"))
    }
}

/// An error's whole chain in one line (reqwest's own message leaves out the cause).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl Dispatcher {
    /// Starts a worker for every webhook in the store.
    pub fn start(
        store: Store,
        settings: WebhookSettings,
        shutdown: Shutdown,
    ) -> anyhow::Result<Arc<Self>> {
        let mut client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            // A redirect would take the delivery somewhere nobody checked.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the name itself, past the check below.
            .no_proxy()
            .user_agent(concat!("skylight-scheduler/", env!("CARGO_PKG_VERSION")));
        if !settings.allow_private {
            client = client.dns_resolver(Arc::new(target::PublicOnly));
        }
        let dispatcher = Arc::new(Dispatcher {
            store,
            settings,
            client: client.build()?,
            workers: Mutex::default(),
            shutdown,
        });
        for id in dispatcher.store.webhook_ids()? {
            dispatcher.poke(id);
        }
        Ok(dispatcher)
    }

    /// Tells webhook `id`'s worker to look at its queue, starting it if it is not running.
    pub fn poke(self: &Arc<Self>, id: u64) {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = workers.get(&id) {
            n.notify_one();
            return;
        }
        let notify = Arc::new(Notify::new());
        workers.insert(id, notify.clone());
        tokio::spawn(self.clone().work(id, notify));
    }

    async fn work(self: Arc<Self>, id: u64, notify: Arc<Notify>) {
        loop {
            match self.round(id).await {
                Ok(Some(wait)) => {
                    tokio::select! {
                        () = notify.notified() => {}
                        () = tokio::time::sleep(wait) => {}
                        () = self.shutdown.wait() => return,
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(webhook = id, error = %e, "webhook deliveries: storage failed; trying again");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = self.shutdown.wait() => return,
                    }
                }
            }
        }
        // The webhook is gone. A poke that raced this exit started no second worker (the
        // entry was still here) and finds nothing to do: the webhook is deleted.
        self.workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// Delivers what is due now; how long until something may be due again, or `None` if
    /// the webhook no longer exists.
    async fn round(self: &Arc<Self>, id: u64) -> Result<Option<Duration>, crate::error::Error> {
        let store = self.store.clone();
        let Some(webhook) = blocking(move || store.webhook(id)).await? else {
            return Ok(None);
        };
        let store = self.store.clone();
        let now = now_ms();
        let due = blocking(move || store.due_deliveries(id, now, IN_FLIGHT)).await?;
        if due.is_empty() {
            let store = self.store.clone();
            let next = blocking(move || store.next_due(id)).await?;
            let wait = next.map_or(IDLE_LOOK, |at| {
                Duration::from_millis(at.saturating_sub(now_ms())).min(IDLE_LOOK)
            });
            return Ok(Some(wait));
        }
        let webhook = Arc::new(webhook);
        let mut attempts = tokio::task::JoinSet::new();
        for (key, delivery) in due {
            let (me, webhook) = (self.clone(), webhook.clone());
            attempts.spawn(async move { me.attempt(&webhook, key, delivery).await });
        }
        while let Some(recorded) = attempts.join_next().await {
            recorded.map_err(|e| crate::error::Error::Internal(e.to_string()))??;
        }
        Ok(Some(Duration::ZERO))
    }

    async fn attempt(
        &self,
        webhook: &WebhookRecord,
        key: DeliveryKey,
        mut delivery: DeliveryRecord,
    ) -> Result<(), crate::error::Error> {
        delivery.attempts += 1;
        let outcome = self.send(webhook, &delivery).await;
        let store = self.store.clone();
        let attempt = delivery.attempts;
        match outcome {
            Outcome::Delivered => {
                tracing::debug!(webhook = key.0, event_id = %delivery.event_id, attempt, "webhook delivered");
                blocking(move || store.delivery_attempted(key, &delivery, None)).await
            }
            Outcome::Retry(why) if (attempt as usize) <= self.settings.retry_schedule.len() => {
                let wait = jittered(self.settings.retry_schedule[attempt as usize - 1]);
                tracing::info!(webhook = key.0, event_id = %delivery.event_id, attempt, error = %why, retry_in_ms = wait.as_millis() as u64, "webhook delivery failed; will retry");
                delivery.last_error = Some(why);
                let due = now_ms() + wait.as_millis() as u64;
                blocking(move || store.delivery_attempted(key, &delivery, Some(due))).await
            }
            Outcome::Retry(why) | Outcome::Refused(why) => {
                tracing::warn!(webhook = key.0, node_id = %delivery.node_id, event_id = %delivery.event_id, attempt, error = %why, "webhook delivery given up (scheduler webhooks failed lists it)");
                delivery.last_error = Some(why);
                let uri = webhook.uri.clone();
                blocking(move || store.delivery_failed(key, &delivery, &uri)).await
            }
        }
    }

    async fn send(&self, webhook: &WebhookRecord, delivery: &DeliveryRecord) -> Outcome {
        let url = match Url::parse(&webhook.uri) {
            Ok(u) => u,
            Err(e) => return Outcome::Refused(format!("the URL no longer parses: {e}")),
        };
        if let Err(why) = target::may_send(&url, &self.settings) {
            return Outcome::Refused(why);
        }
        let timestamp = crate::store::now();
        let body = delivery.body.as_bytes();
        let request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("gl-signature", sign::gl_signature(&webhook.secret, body))
            .header("X-Greenlight-Event", &delivery.event_type)
            .header("webhook-id", &delivery.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                sign::standard_signature(&webhook.secret, &delivery.event_id, timestamp, body),
            )
            .body(delivery.body.clone());
        match request.send().await {
            Ok(response) => classify(response.status()),
            Err(e) => Outcome::Retry(describe(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_delivered_retried_or_refused_as_the_issue_says() {
        use reqwest::StatusCode as S;
        assert_eq!(classify(S::OK), Outcome::Delivered);
        assert_eq!(classify(S::NO_CONTENT), Outcome::Delivered);
        for s in [
            S::INTERNAL_SERVER_ERROR,
            S::BAD_GATEWAY,
            S::SERVICE_UNAVAILABLE,
            S::TOO_MANY_REQUESTS,
        ] {
            assert!(matches!(classify(s), Outcome::Retry(_)), "{s}");
        }
        for s in [
            S::BAD_REQUEST,
            S::UNAUTHORIZED,
            S::NOT_FOUND,
            S::GONE,
            S::FOUND,
            S::MOVED_PERMANENTLY,
        ] {
            assert!(matches!(classify(s), Outcome::Refused(_)), "{s}");
        }
    }

    #[test]
    fn retries_are_spread_within_a_fifth_of_their_wait() {
        for _ in 0..100 {
            let w = jittered(Duration::from_secs(10));
            assert!(
                w >= Duration::from_secs(8) && w <= Duration::from_secs(12),
                "{w:?}"
            );
        }
    }
}
