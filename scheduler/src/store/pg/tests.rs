//! What replicas on one database rely on, beyond the scenarios every backend passes (see
//! `store/testing.rs`): checks made inside a write hold across stores, not just threads.

use skylight_test_support::Postgres;

use crate::error::Error;
use crate::store::testing::tenant;
use crate::store::{OpenError, Store};

/// Two stores on one database, as two scheduler replicas hold them.
fn replicas(pg: &Postgres) -> [Store; 2] {
    let open = || {
        Store::open_postgres(
            skylight_postgres::parse(&pg.url()).unwrap(),
            Some("regtest"),
        )
        .unwrap()
    };
    [open(), open()]
}

/// Runs `each(store, n)` for n in `ns` on threads alternating between the replicas, all
/// at once; what each returned, in the order of `ns`.
fn race<T: Send + 'static>(
    stores: &[Store; 2],
    ns: std::ops::Range<u8>,
    each: impl Fn(&Store, u8) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(ns.len()));
    let each = std::sync::Arc::new(each);
    let handles: Vec<_> = ns
        .map(|n| {
            let (store, barrier, each) = (
                stores[n as usize % 2].clone(),
                barrier.clone(),
                each.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                each(&store, n)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn an_invite_code_raced_on_two_replicas_is_redeemed_once_and_both_see_the_tenant() {
    let Some(pg) = Postgres::start() else { return };
    let stores = replicas(&pg);
    let code = stores[0].create_invites(1).unwrap().remove(0);
    let results = race(&stores, 2..12, move |store, n| {
        store.register(tenant(n), Some(&code), 0)
    });
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{:?}",
        results
            .iter()
            .map(|r| r.as_ref().err().map(|e| e.to_string()))
            .collect::<Vec<_>>()
    );
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, Error::FailedPrecondition(m) if m.contains("already been used"))),
        "every other registration is told the code is used"
    );
    assert_eq!(stores[0].tenants().unwrap().len(), 1);
    assert_eq!(stores[1].tenants().unwrap().len(), 1);
}

#[test]
fn the_tenant_cap_holds_across_replicas_registering_at_once() {
    let Some(pg) = Postgres::start() else { return };
    let stores = replicas(&pg);
    let registered = race(&stores, 2..14, |store, n| {
        store.register_within(tenant(n), None, 0, 5).is_ok()
    });
    assert_eq!(registered.iter().filter(|ok| **ok).count(), 5);
    assert_eq!(stores[1].tenant_count().unwrap(), 5);
}

#[test]
fn lightning_ports_given_on_two_replicas_at_once_are_never_shared() {
    let Some(pg) = Postgres::start() else { return };
    let stores = replicas(&pg);
    race(&stores, 2..12, |store, n| {
        store.p2p_port(&[n; 33], 9000..=9009).is_ok()
    });
    let mut ports: Vec<u16> = (2..12u8)
        .map(|n| stores[0].p2p_port(&[n; 33], 9000..=9009).unwrap())
        .collect();
    ports.sort();
    assert_eq!(ports, (9000..=9009).collect::<Vec<_>>(), "one port each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_made_inside_an_async_task_is_answered() {
    let Some(pg) = Postgres::start() else { return };
    // Not from spawn_blocking: the store must not nest its runtime in the caller's.
    let store = replicas(&pg)[0].clone();
    store.register(tenant(2), None, 0).unwrap();
    assert!(store.tenant(&[2; 33]).unwrap().is_some());
}

#[test]
fn a_database_for_another_network_or_nowhere_is_refused_with_what_to_do() {
    let Some(pg) = Postgres::start() else { return };
    drop(replicas(&pg));
    let config = skylight_postgres::parse(&pg.url()).unwrap();
    match Store::open_postgres(config, Some("bitcoin")) {
        Err(OpenError::WrongNetwork(m)) => assert!(m.contains("serves regtest"), "{m}"),
        other => panic!("{:?}", other.err()),
    }
    let port = pg.port();
    drop(pg);
    let config = skylight_postgres::parse(&format!("postgres://u:p@127.0.0.1:{port}/x")).unwrap();
    match Store::open_postgres(config, Some("regtest")) {
        Err(OpenError::Other(m)) => assert!(m.contains("cannot be reached"), "{m}"),
        other => panic!("{:?}", other.err()),
    }
}
