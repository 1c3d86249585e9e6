//! Packing a stopped node: its directory (less what belongs to the operator or to one run),
//! its identity, sealed to its node key.

use std::path::Path;

use skylight_client::export::identity::ExportIdentity;
use skylight_client::export::{archive, seal};
use skylight_node_host::paths::{self, NodeDir};

use crate::error::Error;
use crate::store::records::{TenantCaRecord, TenantRecord};

/// Files of a node directory that are not the node's state: one run's (its certificate,
/// process id, address, log) or the operator's (the chain's and the database's credentials).
fn left_out(dir: &NodeDir) -> Vec<String> {
    [
        dir.server_cert(),
        dir.server_key(),
        dir.grpc_uri(),
        dir.pid(),
        dir.log(),
        dir.bitcoind_auth(),
        dir.state_database_url(),
        dir.state_database_ca(),
        // The export's node runs from its own directory's store, never from a database.
        dir.state_in_database(),
    ]
    .iter()
    .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
    .collect()
}

/// The sealed export of the node in `dir`, which must not be running.
pub fn seal_node(
    dir: &NodeDir,
    tenant: &TenantRecord,
    ca: &TenantCaRecord,
    users_ca_pem: &str,
    node_id: &[u8; 33],
) -> Result<Vec<u8>, Error> {
    let internal =
        |e: skylight_client::export::ExportError| Error::Internal(format!("export: {e}"));
    let identity = serde_json::to_vec_pretty(&ExportIdentity {
        node_id: tenant.node_id.clone(),
        network: tenant.network.clone(),
        signer_version: tenant.signer_version.clone(),
        init_msg: tenant.init_msg.clone(),
        startup_msgs: tenant.startup_msgs.clone(),
        tenant_ca_cert_pem: ca.cert_pem.clone(),
        tenant_ca_key_pem: ca.key_pem.clone(),
        users_ca_cert_pem: users_ca_pem.to_string(),
    })
    .map_err(|e| Error::Internal(e.to_string()))?;
    let leave_out = left_out(dir);
    let leave_out: Vec<&str> = leave_out.iter().map(String::as_str).collect();
    let root: &Path = dir.root();
    let (tar, manifest) = archive::pack(
        root,
        &leave_out,
        &[(paths::IDENTITY, identity)],
        archive::NodeFacts {
            node_id: tenant.node_id.clone(),
            network: tenant.network.clone(),
            exported_by: format!("skylight-scheduler {}", env!("CARGO_PKG_VERSION")),
            exported_at: crate::store::now(),
        },
    )
    .map_err(internal)?;
    tracing::info!(node_id = %tenant.node_id, files = manifest.files.len(), bytes = tar.len(), "node packed for export");
    let key = bitcoin::secp256k1::PublicKey::from_slice(node_id)
        .map_err(|e| Error::Internal(format!("node id of {}: {e}", tenant.node_id)))?;
    seal::seal(&key, &tar).map_err(internal)
}
