//! Tenants registered through the library (no binary), and the statuses their calls get.

use bitcoin::Network;
use skylight_client::keys::NodeKeys;
use skylight_client::secret::HsmSecret;
use skylight_client::tls::TlsIdentity;

use crate::Scheduler;

/// The keys of a new node (a fresh random seed).
pub fn new_keys() -> NodeKeys {
    let secret: [u8; 32] = bitcoin::secp256k1::rand::random();
    NodeKeys::derive(&HsmSecret::from_bytes(secret), Network::Regtest)
}

/// Registers a new node with an invite code the operator mints, through the library (as a
/// Greenlight client would); its keys and device identity.
pub async fn register_invited(s: &Scheduler) -> (NodeKeys, TlsIdentity) {
    let keys = new_keys();
    let code = s.invite(1).unwrap().remove(0);
    let creds =
        skylight_client::identity::register(&s.uri, &s.nobody(), &keys, "regtest", Some(&code))
            .await
            .expect("register");
    (keys, skylight_client::creds::identity(&creds))
}

/// The code a call that should have been refused got.
pub fn code_of<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> tonic::Code {
    r.expect_err("the call should have been refused").code()
}

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
