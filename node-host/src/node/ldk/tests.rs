use lightning::util::persist::KVStoreSync;

use super::*;

fn store() -> (tempfile::TempDir, FilesystemStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = FilesystemStore::new(dir.path().join("ldk"));
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

#[test]
fn a_channel_manager_that_cannot_be_read_is_an_error_not_a_new_node() {
    let (dir, store) = store();
    // A directory where the manager's file should be: it exists, and cannot be read.
    std::fs::create_dir_all(
        dir.path()
            .join("ldk")
            .join(persist::CHANNEL_MANAGER_PERSISTENCE_KEY)
            .join("inside"),
    )
    .unwrap();
    let err = has_node(&store).unwrap_err();
    assert_ne!(err.kind(), std::io::ErrorKind::NotFound);
    assert!(err.to_string().contains("cannot read the stored channel manager"), "{err}");
}
