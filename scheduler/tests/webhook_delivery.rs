//! The delivery workers against real HTTP receivers on loopback: a receiver that hangs
//! holds up only its own webhook's deliveries and has its attempts timed out and tried
//! again, and what was queued before the workers started (by a scheduler that stopped,
//! say) is delivered once each.

use std::time::Duration;

use skylight_scheduler::shutdown::Shutdown;
use skylight_scheduler::store::Store;
use skylight_scheduler::store::webhooks::NewEvent;
use skylight_scheduler::webhooks::Dispatcher;
use skylight_scheduler::webhooks::dispatch::now_ms;
use skylight_scheduler::webhooks::settings::WebhookSettings;
use skylight_test_support::WebhookReceiver;

fn settings() -> WebhookSettings {
    WebhookSettings {
        allow_http: true,
        allow_private: true,
        timeout: Duration::from_secs(2),
        retry_schedule: vec![Duration::from_millis(100); 3],
    }
}

fn events(n: usize, tag: &str) -> Vec<NewEvent> {
    (0..n)
        .map(|i| NewEvent {
            event_id: format!("{tag}{i}"),
            event_type: "invoice_payment".into(),
            body: format!("{{\"event_id\":\"{tag}{i}\"}}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_hangs_holds_up_only_its_own_webhook_and_its_attempts_time_out_and_are_tried_again()
 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), Some("regtest")).unwrap();
    let slow = WebhookReceiver::start();
    slow.answer_after(Duration::from_secs(25));
    let fast = WebhookReceiver::start();
    let (a, b) = ([2u8; 33], [3u8; 33]);
    store
        .add_webhook(&a, &slow.url(), "whsec_c2VjcmV0")
        .unwrap();
    store
        .add_webhook(&b, &fast.url(), "whsec_c2VjcmV0")
        .unwrap();
    // The slow tenant's backlog is larger than what one webhook has in flight at once.
    store.store_events(&a, &events(10, "a"), now_ms()).unwrap();
    store.store_events(&b, &events(20, "b"), now_ms()).unwrap();

    let shutdown = Shutdown::new();
    let _dispatcher = Dispatcher::start(store.clone(), settings(), shutdown.clone()).unwrap();
    let got = tokio::task::spawn_blocking(move || {
        let got = fast.wait_for(20, Duration::from_secs(20));
        (got, fast)
    })
    .await
    .unwrap()
    .0;
    assert_eq!(
        got.len(),
        20,
        "the other tenant's webhook got all of its events"
    );
    let held = slow.received().len();
    assert!(
        held <= skylight_scheduler::webhooks::dispatch::IN_FLIGHT,
        "the hanging receiver has at most one round in flight: {held}"
    );
    // Its attempts time out (2 s) and the same events come again, under the same ids.
    tokio::task::spawn_blocking(move || {
        skylight_test_support::eventually("a timed-out attempt is tried again", || {
            let mut ids: Vec<String> = slow
                .received()
                .iter()
                .map(|r| r.header("webhook-id").to_string())
                .collect();
            let all = ids.len();
            ids.sort();
            ids.dedup();
            ids.len() < all
        })
    })
    .await
    .unwrap();
    shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_queued_before_the_workers_start_are_each_delivered_once() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), Some("regtest")).unwrap();
    let receiver = WebhookReceiver::start();
    let node = [2u8; 33];
    store
        .add_webhook(&node, &receiver.url(), "whsec_c2VjcmV0")
        .unwrap();
    store
        .store_events(&node, &events(30, "e"), now_ms())
        .unwrap();
    assert_eq!(store.queued_deliveries().unwrap(), 30);

    let shutdown = Shutdown::new();
    let _dispatcher = Dispatcher::start(store.clone(), settings(), shutdown.clone()).unwrap();
    let (got, receiver) = tokio::task::spawn_blocking(move || {
        (receiver.wait_for(30, Duration::from_secs(20)), receiver)
    })
    .await
    .unwrap();
    let mut ids: Vec<String> = got
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30);
    shutdown.trigger();
    let left = store.clone();
    tokio::task::spawn_blocking(move || {
        skylight_test_support::eventually("the queue is empty", || {
            left.queued_deliveries().unwrap() == 0
        })
    })
    .await
    .unwrap();
    assert_eq!(receiver.received().len(), 30, "nothing delivered twice");
}
