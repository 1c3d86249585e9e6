use std::time::Duration;

use skylight_test_support::Postgres;

use super::*;
use crate::schema;

async fn client(pg: &Postgres) -> Client {
    let mut c = crate::connect(&crate::parse(&pg.url()).unwrap())
        .await
        .unwrap();
    schema::migrate(&mut c).await.unwrap();
    c
}

const NODE: &[u8] = &[2; 33];

#[tokio::test]
async fn the_first_node_host_takes_the_lease_and_a_second_is_refused_while_it_lasts() {
    let Some(pg) = Postgres::start() else { return };
    let c = client(&pg).await;
    let first = Lease::acquire(&c, NODE, vec![1], Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(first.epoch, 1);
    match Lease::acquire(&c, NODE, vec![2], Duration::from_secs(30)).await {
        Err(Refused::Held(left)) => assert!(left <= Duration::from_secs(30), "{left:?}"),
        other => panic!("a held lease was taken: {other:?}"),
    }
    assert!(first.renew(&c).await.unwrap(), "the holder renews");
}

#[tokio::test]
async fn a_lease_run_out_is_taken_over_and_its_old_holder_can_no_longer_renew() {
    let Some(pg) = Postgres::start() else { return };
    let c = client(&pg).await;
    let old = Lease::acquire(&c, NODE, vec![1], Duration::from_millis(200))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let new = Lease::acquire(&c, NODE, vec![2], Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(new.epoch, 2);
    assert!(!old.renew(&c).await.unwrap(), "the old holder is fenced");
    assert!(new.renew(&c).await.unwrap());
}

#[tokio::test]
async fn a_lease_run_out_and_not_taken_over_cannot_be_renewed_by_its_old_holder() {
    let Some(pg) = Postgres::start() else { return };
    let c = client(&pg).await;
    let old = Lease::acquire(&c, NODE, vec![1], Duration::from_millis(200))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !old.renew(&c).await.unwrap(),
        "once run out, a lease is taken again, never renewed"
    );
}

#[tokio::test]
async fn a_released_lease_is_taken_at_once() {
    let Some(pg) = Postgres::start() else { return };
    let c = client(&pg).await;
    let old = Lease::acquire(&c, NODE, vec![1], Duration::from_secs(30))
        .await
        .unwrap();
    old.release(&c).await.unwrap();
    let new = Lease::acquire(&c, NODE, vec![2], Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(new.epoch, 2);
}

#[tokio::test]
async fn a_takeover_waits_for_a_write_in_progress_and_then_finds_the_lease_renewed() {
    let Some(pg) = Postgres::start() else { return };
    let mut writer = client(&pg).await;
    let other = client(&pg).await;
    let old = Lease::acquire(&writer, NODE, vec![1], Duration::from_millis(300))
        .await
        .unwrap();
    let txn = writer.transaction().await.unwrap();
    // The write's transaction renews (and locks) the lease first.
    let renewing = Lease {
        ttl: Duration::from_secs(30),
        ..old.clone()
    };
    assert!(renewing.renew(&txn).await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The old expiry has passed by now, but the row is locked by the write.
    let takeover = tokio::spawn(async move {
        Lease::acquire(&other, NODE, vec![2], Duration::from_secs(30)).await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!takeover.is_finished(), "the takeover waits for the write");
    txn.commit().await.unwrap();
    match takeover.await.unwrap() {
        Err(Refused::Held(_)) => {}
        other => panic!("the takeover took a lease just renewed: {other:?}"),
    }
}

#[tokio::test]
async fn migrating_twice_changes_nothing_and_a_newer_schema_is_refused() {
    let Some(pg) = Postgres::start() else { return };
    let mut c = client(&pg).await;
    assert_eq!(schema::migrate(&mut c).await.unwrap(), schema::version());
    c.execute(
        "INSERT INTO skylight_schema (version) VALUES ($1)",
        &[&(schema::version() + 1)],
    )
    .await
    .unwrap();
    let err = schema::migrate(&mut c).await.unwrap_err().to_string();
    assert!(err.contains("newer than this release"), "{err}");
}
