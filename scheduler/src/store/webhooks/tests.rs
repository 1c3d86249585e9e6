use super::*;
use crate::store::testing::{Place, on_every_backend};

fn event(id: &str) -> NewEvent {
    NewEvent {
        event_id: id.into(),
        event_type: "invoice_payment".into(),
        body: format!("{{\"event_id\":\"{id}\"}}"),
    }
}

const A: [u8; 33] = [2; 33];
const B: [u8; 33] = [3; 33];

fn a_tenant_has_at_most_twenty_webhooks_and_sees_only_its_own(place: &Place) {
    let store = place.open();
    let mut ids = Vec::new();
    for i in 0..MAX_WEBHOOKS_PER_TENANT {
        ids.push(
            store
                .add_webhook(&A, &format!("https://a/{i}"), "s")
                .unwrap(),
        );
    }
    let err = store.add_webhook(&A, "https://a/x", "s").unwrap_err();
    assert!(matches!(err, Error::ResourceExhausted(_)), "{err}");
    let b = store.add_webhook(&B, "https://b", "s").unwrap();
    assert_eq!(ids, (1..=20).collect::<Vec<u64>>());
    assert_eq!(b, 21);
    assert_eq!(store.webhooks_of(&A).unwrap().len(), 20);
    assert_eq!(store.webhooks_of(&B).unwrap()[0].1.uri, "https://b");

    // B cannot delete or rotate A's webhook; nothing changes when it tries.
    assert!(matches!(
        store.delete_webhooks(&B, &[b, 1]).unwrap_err(),
        Error::NotFound(_)
    ));
    assert_eq!(store.webhooks_of(&B).unwrap().len(), 1, "nothing deleted");
    assert!(matches!(
        store.rotate_webhook_secret(&B, 1, "t").unwrap_err(),
        Error::NotFound(_)
    ));
    assert_eq!(store.webhook(1).unwrap().unwrap().secret, "s");
    store.rotate_webhook_secret(&A, 1, "t").unwrap();
    assert_eq!(store.webhook(1).unwrap().unwrap().secret, "t");

    store.delete_webhooks(&A, &[1, 2]).unwrap();
    assert_eq!(store.webhooks_of(&A).unwrap().len(), 18);
    store.add_webhook(&A, "https://a/again", "s").unwrap();
}

fn an_event_is_queued_once_for_each_webhook_even_when_a_node_host_sends_it_twice(place: &Place) {
    let store = place.open();
    let w1 = store.add_webhook(&A, "https://a/1", "s").unwrap();
    let w2 = store.add_webhook(&A, "https://a/2", "s").unwrap();
    let other = store.add_webhook(&B, "https://b", "s").unwrap();
    assert_eq!(
        store.store_events(&A, &[event("e1")], 1_000).unwrap(),
        (1, vec![w1, w2])
    );
    assert_eq!(
        store.store_events(&A, &[event("e1")], 2_000).unwrap(),
        (0, vec![])
    );
    assert!(store.has_event(&A, "e1").unwrap());
    assert!(!store.has_event(&B, "e1").unwrap(), "events are per tenant");
    assert_eq!(store.queued_deliveries().unwrap(), 2);
    assert!(
        store
            .due_deliveries(other, u64::MAX, 10)
            .unwrap()
            .is_empty()
    );
    let due = store.due_deliveries(w1, 1_000, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].1.event_id, "e1");
    assert!(
        store.due_deliveries(w1, 999, 10).unwrap().is_empty(),
        "not due yet"
    );
}

fn a_delivery_leaves_the_queue_only_with_its_outcome(place: &Place) {
    let store = place.open();
    let w = store.add_webhook(&A, "https://a", "s").unwrap();
    store
        .store_events(&A, &[event("e1"), event("e2")], 1_000)
        .unwrap();
    let due = store.due_deliveries(w, 1_000, 10).unwrap();
    assert_eq!(due.len(), 2);

    // e1 fails once and is due again later; e2 is delivered.
    let (k1, mut r1) = due[0].clone();
    r1.attempts = 1;
    r1.last_error = Some("HTTP 500".into());
    store.delivery_attempted(k1, &r1, Some(5_000)).unwrap();
    store.delivery_attempted(due[1].0, &due[1].1, None).unwrap();
    assert!(store.due_deliveries(w, 4_999, 10).unwrap().is_empty());
    assert_eq!(store.next_due(w).unwrap(), Some(5_000));
    let again = store.due_deliveries(w, 5_000, 10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].1.attempts, 1);
    assert_eq!(again[0].1.event_id, "e1");

    store
        .delivery_failed(again[0].0, &again[0].1, "https://a")
        .unwrap();
    assert_eq!(store.next_due(w).unwrap(), None);
    let failed = store.failed_deliveries().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].delivery.event_id, "e1");
    assert_eq!(failed[0].uri, "https://a");
}

fn deleting_a_webhook_drops_what_was_queued_for_it_and_a_late_outcome_does_not_bring_it_back(
    place: &Place,
) {
    let store = place.open();
    let w = store.add_webhook(&A, "https://a", "s").unwrap();
    store.store_events(&A, &[event("e1")], 1_000).unwrap();
    let (key, record) = store.due_deliveries(w, 1_000, 1).unwrap().remove(0);
    store.delete_webhooks(&A, &[w]).unwrap();
    assert_eq!(store.queued_deliveries().unwrap(), 0);
    // The attempt in flight while it was deleted ends.
    store.delivery_attempted(key, &record, Some(9_000)).unwrap();
    store.delivery_failed(key, &record, "https://a").unwrap();
    assert_eq!(store.queued_deliveries().unwrap(), 0);
    assert!(store.failed_deliveries().unwrap().is_empty());
}

on_every_backend!(
    a_tenant_has_at_most_twenty_webhooks_and_sees_only_its_own,
    an_event_is_queued_once_for_each_webhook_even_when_a_node_host_sends_it_twice,
    a_delivery_leaves_the_queue_only_with_its_outcome,
    deleting_a_webhook_drops_what_was_queued_for_it_and_a_late_outcome_does_not_bring_it_back,
);
