//! What the node did, counted for the operator's metrics, and reported to the scheduler
//! over its events socket (`skylight.outbox.Events/ReportUsage`) about once a second.
//!
//! The counts live in one process-wide tally: a node-host runs one node, and the places
//! that count (the signer link's stage, LDK's event handler) are far apart. Only counts
//! and signing latencies are kept; nothing names a payment, a peer or an amount. A report
//! the scheduler does not take is added back, so nothing is lost while it restarts; the
//! latencies kept are bounded.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use skylight_proto::outbox::{self as pb, events_client::EventsClient};
use tokio_util::sync::CancellationToken;

/// How often what was counted is reported.
const EVERY: Duration = Duration::from_secs(1);
/// The most signing latencies kept between reports; beyond it requests are still counted.
const MAX_SAMPLES: usize = 10_000;

static TALLY: Mutex<pb::UsageReport> = Mutex::new(pb::UsageReport {
    signing_requests: 0,
    signing_refused: 0,
    signing_seconds: Vec::new(),
    payments_sent: 0,
    payments_received: 0,
    signer_attachments: 0,
});

fn count(f: impl FnOnce(&mut pb::UsageReport)) {
    f(&mut TALLY.lock().unwrap_or_else(|p| p.into_inner()));
}

/// A signer answered a signing request `took` after it was staged.
pub fn signing_answered(took: Duration, refused: bool) {
    count(|t| {
        t.signing_requests += 1;
        t.signing_refused += u64::from(refused);
        if t.signing_seconds.len() < MAX_SAMPLES {
            t.signing_seconds.push(took.as_secs_f64());
        }
    });
}

/// The node sent a payment.
pub fn payment_sent() {
    count(|t| t.payments_sent += 1);
}

/// The node was paid.
pub fn payment_received() {
    count(|t| t.payments_received += 1);
}

/// A signer attached to the node's hsm stream.
pub fn signer_attached() {
    count(|t| t.signer_attachments += 1);
}

fn take() -> Option<pb::UsageReport> {
    let mut t = TALLY.lock().unwrap_or_else(|p| p.into_inner());
    let empty = t.signing_requests == 0
        && t.payments_sent == 0
        && t.payments_received == 0
        && t.signer_attachments == 0;
    (!empty).then(|| std::mem::take(&mut *t))
}

fn give_back(r: pb::UsageReport) {
    count(|t| {
        t.signing_requests += r.signing_requests;
        t.signing_refused += r.signing_refused;
        let room = MAX_SAMPLES.saturating_sub(t.signing_seconds.len());
        t.signing_seconds
            .extend(r.signing_seconds.into_iter().take(room));
        t.payments_sent += r.payments_sent;
        t.payments_received += r.payments_received;
        t.signer_attachments += r.signer_attachments;
    });
}

async fn report(socket: &std::path::Path, client: &mut Option<EventsClient<tonic::transport::Channel>>) {
    let Some(r) = take() else { return };
    if client.is_none() {
        match skylight_client::local::channel(socket, Some(Duration::from_secs(5))).await {
            Ok(c) => *client = Some(EventsClient::new(c)),
            Err(_) => return give_back(r),
        }
    }
    let c = client.as_mut().expect("connected above");
    if let Err(status) = c.report_usage(r.clone()).await {
        tracing::debug!(%status, "the scheduler did not take the usage report; it goes with the next");
        *client = None;
        give_back(r);
    }
}

/// Reports what was counted every `EVERY` until `stop`, then once more.
pub async fn run(socket: PathBuf, stop: CancellationToken) {
    let mut client = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(EVERY) => report(&socket, &mut client).await,
            () = stop.cancelled() => break,
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), report(&socket, &mut client)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_not_taken_is_counted_again_and_latencies_stay_bounded() {
        // One test touches the tally: tests run in parallel in one process.
        let _ = take();
        for _ in 0..MAX_SAMPLES + 5 {
            signing_answered(Duration::from_millis(2), false);
        }
        signing_answered(Duration::from_millis(3), true);
        payment_sent();
        payment_received();
        signer_attached();
        let r = take().expect("something was counted");
        assert_eq!(r.signing_requests, MAX_SAMPLES as u64 + 6);
        assert_eq!(r.signing_refused, 1);
        assert_eq!(r.signing_seconds.len(), MAX_SAMPLES);
        assert_eq!((r.payments_sent, r.payments_received, r.signer_attachments), (1, 1, 1));
        assert!(take().is_none(), "taken once");
        payment_sent();
        give_back(r);
        let again = take().unwrap();
        assert_eq!(again.payments_sent, 2);
        assert_eq!(again.signing_requests, MAX_SAMPLES as u64 + 6);
        assert_eq!(again.signing_seconds.len(), MAX_SAMPLES);
    }
}
