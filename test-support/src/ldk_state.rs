//! What a node's LDK store holds, read from its `ldk.redb` while no node-host has it open.

use lightning_signer::lightning::util::persist::{
    CHANNEL_MONITOR_PERSISTENCE_PRIMARY_NAMESPACE, CHANNEL_MONITOR_PERSISTENCE_SECONDARY_NAMESPACE,
    KVStoreSync,
};
use skylight_node_host::paths::NodeDir;
use skylight_node_host::store::ldk_store::LdkStore;

/// The keys of the channel monitors stored in the node directory `dir`.
pub fn stored_monitors(dir: &std::path::Path) -> Vec<String> {
    let store = LdkStore::open(&NodeDir::new(dir).ldk_store()).expect("the node's ldk.redb");
    store
        .list(
            CHANNEL_MONITOR_PERSISTENCE_PRIMARY_NAMESPACE,
            CHANNEL_MONITOR_PERSISTENCE_SECONDARY_NAMESPACE,
        )
        .expect("list the channel monitors")
}
