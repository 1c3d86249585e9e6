//! Webhook delivery figures.
//!
//! 1. Sustained deliveries per second to a local receiver: events already stored (as the
//!    events socket stores them), the delivery workers started, until the receiver has had
//!    every one. In process: the scheduler's own store, workers and HTTP client, a real
//!    HTTP receiver on loopback.
//! 2. Latency from payment claimed to delivery received, through the real binaries: A pays
//!    B over a channel, B's webhook receives `invoice_payment`. The claim time is the event
//!    id's own (milliseconds since the epoch in its top bits, taken by node-host as it
//!    raises the event on `PaymentClaimed`); the receipt time is the receiver's clock, the
//!    same machine's.
//!
//! `cargo build --release --bins && cargo bench -p skylight-scheduler --bench webhooks`.
//! `BENCH_WEBHOOK_EVENTS` (default 2000), `BENCH_WEBHOOK_TENANTS` (default 4),
//! `BENCH_WEBHOOK_PAYMENTS` (default 50; 0 skips part 2).

use std::time::{Duration, Instant};

use skylight_scheduler::shutdown::Shutdown;
use skylight_scheduler::store::Store;
use skylight_scheduler::store::webhooks::NewEvent;
use skylight_scheduler::webhooks::Dispatcher;
use skylight_scheduler::webhooks::dispatch::now_ms;
use skylight_scheduler::webhooks::settings::WebhookSettings;
use skylight_test_support::pair::{Pair, invoice};
use skylight_test_support::{WebhookReceiver, ms, percentile};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn throughput(events: usize, tenants: usize) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), Some("regtest")).unwrap();
    let receiver = WebhookReceiver::start();
    let per = events / tenants;
    for t in 0..tenants {
        let node = [2 + t as u8; 33];
        store
            .add_webhook(&node, &receiver.url(), "whsec_c2VjcmV0")
            .unwrap();
        let batch: Vec<NewEvent> = (0..per)
            .map(|i| NewEvent {
                event_id: format!("{t}x{i}"),
                event_type: "invoice_payment".into(),
                body: format!(
                    "{{\"version\":1,\"event_id\":\"{t}x{i}\",\"event_type\":\"invoice_payment\",\"amount_msat\":1000}}"
                ),
            })
            .collect();
        for chunk in batch.chunks(256) {
            store.store_events(&node, chunk, now_ms()).unwrap();
        }
    }
    let total = per * tenants;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let shutdown = Shutdown::new();
    let started = Instant::now();
    let _dispatcher = runtime
        .block_on(async { Dispatcher::start(store.clone(), settings(), shutdown.clone()) })
        .unwrap();
    receiver.wait_for(total, Duration::from_secs(600));
    let took = started.elapsed();
    shutdown.trigger();
    println!(
        "sustained delivery: {total} deliveries ({tenants} tenants, one webhook each) in {:.2} s = {:.0} deliveries/s",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64()
    );
}

fn settings() -> WebhookSettings {
    WebhookSettings {
        allow_http: true,
        allow_private: true,
        timeout: Duration::from_secs(30),
        retry_schedule: vec![Duration::from_secs(1); 3],
    }
}

fn claim_to_delivery(payments: usize) {
    let pair = Pair::connected_with(&["--webhook-allow-http", "--webhook-allow-private"]);
    pair.fund_channel();
    pair.confirm_channel();
    let receiver = WebhookReceiver::start();
    let added = pair
        .b
        .cli
        .run(&["webhook", "add", &receiver.url()])
        .unwrap()
        .json();
    assert!(added["id"].as_i64().is_some());
    for i in 0..payments {
        let bolt11 = invoice(&pair.b, 1_000_000, &format!("bench-{i}"));
        pair.a.call(&["pay", &bolt11]);
    }
    let got = receiver.wait_for(payments, Duration::from_secs(120));
    let mut latencies: Vec<Duration> = got
        .iter()
        .map(|r| {
            let id: u64 = r.header("webhook-id").parse().unwrap();
            let raised_ms = id >> 22;
            Duration::from_millis(r.at_unix_ms.saturating_sub(raised_ms))
        })
        .collect();
    latencies.sort();
    println!(
        "payment claimed -> delivery received, {payments} payments: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (millisecond clock)",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap())
    );
}

fn main() {
    throughput(
        env("BENCH_WEBHOOK_EVENTS", 2000),
        env("BENCH_WEBHOOK_TENANTS", 4).max(1),
    );
    let payments = env("BENCH_WEBHOOK_PAYMENTS", 50);
    if payments > 0 {
        claim_to_delivery(payments);
    }
}
