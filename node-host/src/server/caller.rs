//! Who is calling: only the tenant's own devices may use its node.

use skylight_certs::PeerIdentity;
use tonic::{Request, Status};

/// TLS already trusts only the tenant's CA; this also checks that the certificate names a
/// device of this node (not the nobody identity, not a service). Returns the device name.
pub fn tenant_device<T>(req: &Request<T>, node_id: &[u8; 33]) -> Result<String, Status> {
    let certs = req
        .peer_certs()
        .ok_or_else(|| Status::unauthenticated("a device certificate is required"))?;
    let leaf = certs
        .first()
        .ok_or_else(|| Status::unauthenticated("a device certificate is required"))?;
    match PeerIdentity::from_der(leaf.as_ref()) {
        Ok(PeerIdentity::Device { node_id: n, device }) if &n == node_id => Ok(device),
        Ok(_) | Err(_) => Err(Status::permission_denied(
            "only a device of this node's tenant may use it",
        )),
    }
}
