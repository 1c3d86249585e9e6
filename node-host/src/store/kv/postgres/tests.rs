use std::sync::Arc;
use std::time::{Duration, Instant};

use skylight_postgres::tokio_postgres;

use skylight_test_support::Postgres;

use super::*;
use crate::store::ldk_store::LdkStore;

const A: [u8; 33] = [2; 33];
const B: [u8; 33] = [3; 33];

fn lease(ttl_ms: u64) -> LeaseSettings {
    LeaseSettings {
        ttl: Duration::from_millis(ttl_ms),
    }
}

/// Runs `sql` on the database, as an operator (or a successor) would; the first column
/// of the first row it returns, if a boolean.
fn sql(pg: &Postgres, sql: &str) -> Option<bool> {
    let config = skylight_postgres::parse(&pg.url()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = skylight_postgres::connect(&config).await.unwrap();
        let rows = client.simple_query(sql).await.unwrap();
        rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(|v| v == "t"),
            _ => None,
        })
    })
}

#[test]
fn keys_are_read_listed_and_removed_within_their_namespaces_in_postgres() {
    let Some(pg) = Postgres::start() else { return };
    let kv = PgKv::open(&pg.url(), A, lease(30_000)).unwrap();
    let store = LdkStore::on(Arc::new(kv));
    crate::store::ldk_store::tests::keys_are_read_listed_and_removed_within_their_namespaces(
        &store,
    );
}

#[test]
fn two_tenants_on_one_database_never_see_each_others_state() {
    let Some(pg) = Postgres::start() else { return };
    let a = PgKv::open(&pg.url(), A, lease(30_000)).unwrap();
    let b = PgKv::open(&pg.url(), B, lease(30_000)).unwrap();
    a.write("monitors", "", "m", b"a's").unwrap();
    b.write("monitors", "", "m", b"b's").unwrap();
    assert_eq!(a.read("monitors", "", "m").unwrap().unwrap(), b"a's");
    assert_eq!(b.read("monitors", "", "m").unwrap().unwrap(), b"b's");
    b.remove("monitors", "", "m").unwrap();
    assert_eq!(a.list_all().unwrap().len(), 1);
    assert!(b.list_all().unwrap().is_empty());
}

#[test]
fn a_second_node_host_for_a_tenant_is_refused_while_the_first_holds_the_lease() {
    let Some(pg) = Postgres::start() else { return };
    let first = PgKv::open(&pg.url(), A, lease(1_000)).unwrap();
    first.write("", "", "manager", b"first").unwrap();
    let err = PgKv::open(&pg.url(), A, lease(1_000))
        .err()
        .expect("a second holder");
    assert!(format!("{err:#}").contains("running elsewhere"), "{err:#}");
    assert!(!first.lost().is_cancelled(), "the holder kept renewing");
    first.write("", "", "manager", b"first again").unwrap();
}

#[test]
fn a_node_host_whose_lease_was_taken_over_cannot_write_and_knows_it_lost() {
    let Some(pg) = Postgres::start() else { return };
    let stale = PgKv::open(&pg.url(), A, lease(30_000)).unwrap();
    stale.write("monitors", "", "m", b"1").unwrap();
    // As if `stale` had stalled past its lease: it runs out, and a successor takes it.
    sql(&pg, "UPDATE node_lease SET expires_at = now() - interval '1 second'");
    let successor = PgKv::open(&pg.url(), A, lease(30_000)).unwrap();
    assert_eq!(successor.epoch(), stale.epoch() + 1);

    assert!(stale.write("monitors", "", "m", b"2 (stale)").is_err());
    assert!(stale.remove("monitors", "", "m").is_err());
    assert!(stale.lost().is_cancelled(), "the stale node-host is told to stop");
    assert!(
        stale.read("monitors", "", "m").is_err(),
        "it serves nothing any more"
    );
    assert_eq!(successor.read("monitors", "", "m").unwrap().unwrap(), b"1");
    successor.write("monitors", "", "m", b"2").unwrap();
}

#[test]
fn a_lease_not_renewed_in_time_is_given_up_before_it_runs_out() {
    let Some(pg) = Postgres::start() else { return };
    let kv = PgKv::open(&pg.url(), A, lease(600)).unwrap();
    // Nobody renews for it: the database is made to refuse (as if unreachable).
    sql(
        &pg,
        "UPDATE node_lease SET owner = '\\x00'::bytea", // renewals now match no row
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !kv.lost().is_cancelled() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(kv.lost().is_cancelled(), "the holder noticed within its lease");
    assert!(kv.write("", "", "k", b"v").is_err());
}

#[test]
fn a_lease_given_up_at_a_clean_stop_is_taken_at_once() {
    let Some(pg) = Postgres::start() else { return };
    let first = PgKv::open(&pg.url(), A, lease(30_000)).unwrap();
    first.write("", "", "manager", b"m").unwrap();
    first.release().unwrap();
    assert!(first.write("", "", "manager", b"after").is_err());
    assert_eq!(
        sql(&pg, "SELECT expires_at <= now() FROM node_lease"),
        Some(true),
        "the lease ends with the stop, not 30 s later"
    );
    let next = PgKv::open(&pg.url(), A, lease(30_000)).unwrap();
    assert_eq!(next.read("", "", "manager").unwrap().unwrap(), b"m");
}
