//! Packing a stopped node: its directory (less what belongs to the operator or to one run),
//! its identity, sealed to its node key.

use std::path::Path;

use serde::Serialize;
use skylight_client::export::{archive, seal};
use skylight_node_host::paths::NodeDir;

use crate::error::Error;
use crate::store::records::{TenantCaRecord, TenantRecord};

/// The identity file added to the archive: what a node started outside the scheduler needs
/// to be the same node to its devices (the tenant CA signed their certificates).
pub const IDENTITY: &str = "identity.json";

#[derive(Serialize)]
struct Identity<'a> {
    node_id: &'a str,
    network: &'a str,
    signer_version: &'a str,
    init_msg: &'a str,
    startup_msgs: &'a [(String, String)],
    tenant_ca_cert_pem: &'a str,
    tenant_ca_key_pem: &'a str,
    /// The users CA, which signed the tenant CA: a server certificate from the tenant CA
    /// with this in its chain verifies against the operator's root the devices trust.
    users_ca_cert_pem: &'a str,
}

/// Files of a node directory that are not the node's state: one run's (its certificate,
/// process id, address, log) or the operator's (the chain's credentials).
fn left_out(dir: &NodeDir) -> Vec<String> {
    [
        dir.server_cert(),
        dir.server_key(),
        dir.grpc_uri(),
        dir.pid(),
        dir.log(),
        dir.bitcoind_auth(),
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
    let identity = serde_json::to_vec_pretty(&Identity {
        node_id: &tenant.node_id,
        network: &tenant.network,
        signer_version: &tenant.signer_version,
        init_msg: &tenant.init_msg,
        startup_msgs: &tenant.startup_msgs,
        tenant_ca_cert_pem: &ca.cert_pem,
        tenant_ca_key_pem: &ca.key_pem,
        users_ca_cert_pem: users_ca_pem,
    })
    .map_err(|e| Error::Internal(e.to_string()))?;
    let leave_out = left_out(dir);
    let leave_out: Vec<&str> = leave_out.iter().map(String::as_str).collect();
    let root: &Path = dir.root();
    let (tar, manifest) = archive::pack(
        root,
        &leave_out,
        &[(IDENTITY, identity)],
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
