use skylight_test_support::Postgres;

use super::*;
use crate::paths::NodeDir;

const NODE: &str = "02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f283686619";

fn config(dir: &std::path::Path, pg: Option<&Postgres>) -> Config {
    let mut c = Config::new(
        NODE.parse().unwrap(),
        dir.to_path_buf(),
        "http://127.0.0.1:1".into(),
    );
    if let Some(pg) = pg {
        let file = dir.join("state-database-url");
        std::fs::write(&file, pg.url()).unwrap();
        c.state_database_url_file = Some(file);
    }
    c
}

#[test]
fn a_node_directorys_state_is_taken_into_the_database_and_then_never_started_without_it() {
    let Some(pg) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let node = NodeDir::new(dir.path());
    {
        let local = RedbKv::open_node(&node).unwrap();
        local.write("monitors", "", "m1", b"monitor").unwrap();
        local.write("", "", "manager", b"manager").unwrap();
    }
    let opened = open(&config(dir.path(), Some(&pg))).unwrap();
    assert_eq!(
        opened.kv.read("monitors", "", "m1").unwrap().unwrap(),
        b"monitor"
    );
    assert_eq!(opened.kv.list_all().unwrap().len(), 2);
    assert!(!node.ldk_store().exists(), "no second copy is left behind");
    opened.database.unwrap().release().unwrap();

    let err = open(&config(dir.path(), None)).err().expect("refused");
    assert!(
        format!("{err:#}").contains("kept in PostgreSQL"),
        "{err:#}"
    );
    assert!(!node.ldk_store().exists(), "and no empty node made instead");

    // Pointed at another, empty database: refused too, rather than a new node.
    let mut elsewhere = config(dir.path(), Some(&pg));
    std::fs::write(
        elsewhere.state_database_url_file.as_ref().unwrap(),
        pg.database("elsewhere"),
    )
    .unwrap();
    elsewhere.lease_ttl = std::time::Duration::from_secs(30);
    let err = open(&elsewhere).err().expect("refused");
    assert!(format!("{err:#}").contains("holds none of it"), "{err:#}");
}

#[test]
fn state_both_here_and_in_the_database_is_refused_unless_the_same() {
    let Some(pg) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let node = NodeDir::new(dir.path());
    // The database holds this node already.
    {
        let opened = open(&config(dir.path(), Some(&pg))).unwrap();
        opened.kv.write("", "", "manager", b"in the database").unwrap();
        opened.database.unwrap().release().unwrap();
    }
    // And its directory holds another copy.
    std::fs::remove_file(node.state_in_database()).unwrap();
    RedbKv::open_node(&node)
        .unwrap()
        .write("", "", "manager", b"older, here")
        .unwrap();
    let err = open(&config(dir.path(), Some(&pg))).err().expect("refused");
    assert!(format!("{err:#}").contains("they differ"), "{err:#}");
    assert!(node.ldk_store().exists(), "neither copy is removed");

    // The same copy in both (a take-in that stopped after its commit) is finished.
    RedbKv::open_node(&node)
        .unwrap()
        .write("", "", "manager", b"in the database")
        .unwrap();
    let opened = open(&config(dir.path(), Some(&pg))).unwrap();
    assert!(!node.ldk_store().exists());
    assert_eq!(
        opened.kv.read("", "", "manager").unwrap().unwrap(),
        b"in the database"
    );
}

#[test]
fn a_nodes_state_is_copied_out_of_the_database_whole_and_an_empty_one_is_refused() {
    let Some(pg) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let node = NodeDir::new(dir.path());
    let key: lightning_signer::bitcoin::secp256k1::PublicKey = NODE.parse().unwrap();
    let ttl = std::time::Duration::from_secs(30);
    // A node that never ran has nothing to copy; one whose state was moved there must.
    assert_eq!(crate::database::copy_out(&node, &pg.url(), key, ttl).unwrap(), 0);
    std::fs::write(node.state_in_database(), "the test's database\n").unwrap();
    assert!(!crate::database::state_is_local(&node));
    let err = crate::database::copy_out(&node, &pg.url(), key, ttl).unwrap_err();
    assert!(format!("{err:#}").contains("holds none"), "{err:#}");
    {
        let db = PgKv::open(&pg.url(), key.serialize(), LeaseSettings { ttl }).unwrap();
        db.write("monitors", "", "m1", b"monitor").unwrap();
        db.write("", "", "manager", b"manager").unwrap();
        db.release().unwrap();
    }
    // A copy an interrupted export left behind is made anew.
    std::fs::write(node.ldk_store(), b"a partial copy").unwrap();
    assert_eq!(crate::database::copy_out(&node, &pg.url(), key, ttl).unwrap(), 2);
    let copy = RedbKv::open_node(&node).unwrap();
    assert_eq!(copy.read("monitors", "", "m1").unwrap().unwrap(), b"monitor");
    assert_eq!(copy.read("", "", "manager").unwrap().unwrap(), b"manager");
}
