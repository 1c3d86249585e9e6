use lightning::util::persist::KVStoreSync;

use super::*;

fn store() -> (tempfile::TempDir, LdkStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = LdkStore::open(&dir.path().join("ldk.redb")).unwrap();
    (dir, store)
}

#[test]
fn an_empty_store_holds_no_node() {
    let (_dir, store) = store();
    assert!(!has_node(&store).unwrap());
}

#[test]
fn channel_monitors_without_their_manager_are_never_started_over() {
    let (_dir, store) = store();
    store
        .write(
            persist::CHANNEL_MONITOR_PERSISTENCE_PRIMARY_NAMESPACE,
            persist::CHANNEL_MONITOR_PERSISTENCE_SECONDARY_NAMESPACE,
            "00aa_0",
            vec![1, 2, 3],
        )
        .unwrap();
    let err = has_node(&store).unwrap_err().to_string();
    assert!(err.contains("no channel manager"), "{err}");
}

/// A store whose every read fails as a disk does.
struct Unreadable;

impl KVStoreSync for Unreadable {
    fn read(&self, _: &str, _: &str, _: &str) -> lightning::io::Result<Vec<u8>> {
        Err(lightning::io::Error::new(
            lightning::io::ErrorKind::Other,
            "input/output error",
        ))
    }
    fn write(&self, _: &str, _: &str, _: &str, _: Vec<u8>) -> lightning::io::Result<()> {
        panic!("nothing is written while the store cannot be read")
    }
    fn remove(&self, _: &str, _: &str, _: &str, _: bool) -> lightning::io::Result<()> {
        panic!("nothing is removed while the store cannot be read")
    }
    fn list(&self, _: &str, _: &str) -> lightning::io::Result<Vec<String>> {
        Err(lightning::io::Error::new(
            lightning::io::ErrorKind::Other,
            "input/output error",
        ))
    }
}

#[test]
fn a_channel_manager_that_cannot_be_read_is_an_error_not_a_new_node() {
    let err = has_node(&Unreadable).unwrap_err();
    assert_ne!(err.kind(), std::io::ErrorKind::NotFound);
    assert!(err.to_string().contains("cannot read the stored channel manager"), "{err}");
}
