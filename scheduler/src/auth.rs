//! Who is calling, from the client certificate TLS has already verified against our root;
//! and the random capabilities callers present instead (an export URL, the admin token).

use skylight_certs::PeerIdentity;
use tonic::Request;

use crate::error::Error;

/// The caller of an RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The anonymous identity.
    Nobody,
    /// A tenant's device.
    Device {
        /// The tenant.
        node_id: [u8; 33],
        /// The device name.
        device: String,
    },
    /// A service certificate.
    Service(String),
}

impl Caller {
    /// How the caller appears in logs and stored reports.
    pub fn describe(&self) -> String {
        match self {
            Caller::Nobody => "nobody".into(),
            Caller::Device { node_id, device } => {
                format!("/users/{}/{device}", hex::encode(node_id))
            }
            Caller::Service(name) => format!("/services/{name}"),
        }
    }
}

/// The caller of `req`.
pub fn caller<T>(req: &Request<T>) -> Result<Caller, Error> {
    let certs = req.peer_certs().ok_or_else(|| {
        Error::Unauthenticated("a client certificate is required (nobody or device)".into())
    })?;
    let leaf = certs.first().ok_or_else(|| {
        Error::Unauthenticated("a client certificate is required (nobody or device)".into())
    })?;
    match PeerIdentity::from_der(leaf.as_ref()) {
        Ok(PeerIdentity::Nobody) => Ok(Caller::Nobody),
        Ok(PeerIdentity::Device { node_id, device }) => Ok(Caller::Device { node_id, device }),
        Ok(PeerIdentity::Service(name)) => Ok(Caller::Service(name)),
        Err(e) => Err(Error::PermissionDenied(format!(
            "the client certificate names no identity this scheduler serves: {e}"
        ))),
    }
}

/// The tenant whose device is calling; the nobody identity and services are refused.
pub fn tenant<T>(req: &Request<T>, rpc: &str) -> Result<[u8; 33], Error> {
    tenant_of(caller(req)?, rpc)
}

/// The tenant of `caller`, which must be a device; the nobody identity and services are
/// refused.
pub fn tenant_of(caller: Caller, rpc: &str) -> Result<[u8; 33], Error> {
    match caller {
        Caller::Device { node_id, .. } => Ok(node_id),
        other => Err(Error::PermissionDenied(format!(
            "{rpc} needs a device certificate, and the caller is {}; register or recover first and use the credentials they return",
            other.describe()
        ))),
    }
}

/// 32 random bytes for a capability (an export's URL, the admin socket's token).
pub fn random_token() -> Result<[u8; 32], Error> {
    let mut token = [0; 32];
    getrandom::getrandom(&mut token)
        .map_err(|e| Error::Internal(format!("no randomness for a token: {e}")))?;
    Ok(token)
}

/// Whether a secret given equals the one kept, without telling by its timing how much of a
/// guess was right.
pub fn same_secret(given: &[u8], kept: &[u8]) -> bool {
    given.len() == kept.len()
        && given
            .iter()
            .zip(kept)
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Checks that a `node_id` in a request body, if given, is the caller's own tenant.
pub fn same_tenant(tenant: &[u8; 33], body_node_id: &[u8]) -> Result<(), Error> {
    if body_node_id.is_empty() || body_node_id == tenant {
        return Ok(());
    }
    Err(Error::PermissionDenied(format!(
        "this device belongs to node {} and cannot act for node {}",
        hex::encode(tenant),
        hex::encode(body_node_id)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_equal_only_when_whole() {
        assert!(same_secret(b"abcd", b"abcd"));
        assert!(!same_secret(b"abcd", b"abce"));
        assert!(!same_secret(b"abc", b"abcd"));
    }

    #[test]
    fn a_body_node_id_must_be_the_callers() {
        let a = [2u8; 33];
        assert!(same_tenant(&a, &[]).is_ok());
        assert!(same_tenant(&a, &a).is_ok());
        assert!(matches!(
            same_tenant(&a, &[3u8; 33]),
            Err(Error::PermissionDenied(_))
        ));
    }
}
