//! Tenants registered through the library (no binary), and the statuses their calls get.

use bitcoin::Network;
use skylight_client::keys::NodeKeys;
use skylight_client::secret::HsmSecret;
use skylight_client::tls::TlsIdentity;

/// The gRPC status inside an error from signer-cli's library, if the server refused.
pub fn status_of(err: &anyhow::Error) -> Option<&tonic::Status> {
    err.downcast_ref::<skylight_client::tls::Refused>()
        .map(|r| &r.status)
}

/// A tenant registered with a fresh random secret.
pub struct NewTenant {
    /// Its secret (the signer's seed).
    pub secret: HsmSecret,
    /// Its node keys.
    pub keys: NodeKeys,
    /// Its device identity, as returned by Register.
    pub device: TlsIdentity,
}

/// Registers a new tenant (no invite code) with the scheduler at `uri`.
pub async fn register_new_tenant(uri: &str, nobody: &TlsIdentity) -> NewTenant {
    let secret = HsmSecret::from_bytes(bitcoin::secp256k1::rand::random());
    let keys = NodeKeys::derive(&secret, Network::Regtest);
    let creds = skylight_client::identity::register(uri, nobody, &keys, "regtest", None)
        .await
        .expect("register");
    let device = skylight_client::creds::identity(&creds);
    NewTenant {
        secret,
        keys,
        device,
    }
}
