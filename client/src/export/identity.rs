//! The identity an export carries beside the node's files (`identity.json`): what a node
//! started outside the scheduler needs to be the same node to its devices. The tenant CA
//! signed their certificates, and a server certificate from it, with the users CA in its
//! chain, verifies against the operator's root the devices already trust.

use serde::{Deserialize, Serialize};

/// `identity.json`. Holds the tenant CA's key: secret, 0600 wherever it is written.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportIdentity {
    /// The node id, hex.
    pub node_id: String,
    /// Its network.
    pub network: String,
    /// The signer's protocol version at the scheduler.
    pub signer_version: String,
    /// The signer's hsmd init reply, hex.
    pub init_msg: String,
    /// The signer's startup messages (request, response), hex.
    pub startup_msgs: Vec<(String, String)>,
    /// The tenant CA's certificate, PEM: the node's only client trust anchor.
    pub tenant_ca_cert_pem: String,
    /// The tenant CA's key, PEM (secret): the node's server certificates are issued with it.
    pub tenant_ca_key_pem: String,
    /// The users CA, which signed the tenant CA.
    pub users_ca_cert_pem: String,
}

impl std::fmt::Debug for ExportIdentity {
    // Never the CA key, whatever prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportIdentity")
            .field("node_id", &self.node_id)
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}
