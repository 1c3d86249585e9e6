//! Who is on the other end of a TLS connection, read from its (already verified) certificate.

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::CertError;
use crate::names;

/// A peer's identity, from the subject of its leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerIdentity {
    /// The anonymous identity: may only ask for challenges, register and recover.
    Nobody,
    /// A tenant's device.
    Device {
        /// The tenant's 33-byte node id.
        node_id: [u8; 33],
        /// The device name (`default`, `recovered-…`, a paired device's name).
        device: String,
    },
    /// A service certificate (`/services/<name>`).
    Service(String),
}

impl PeerIdentity {
    /// Reads the identity from a DER certificate whose chain TLS has already verified.
    ///
    /// A device certificate must also be issued by its own tenant's CA: the issuer name is
    /// covered by the verified signature chain, so this refuses a leaf naming tenant A that
    /// hangs under tenant B's CA.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| CertError::BadCertificate(e.to_string()))?;
        let subject = common_name(cert.subject())
            .ok_or_else(|| CertError::BadCertificate("certificate has no common name".into()))?;
        let issuer = common_name(cert.issuer()).unwrap_or_default();
        Self::from_names(&subject, &issuer)
    }

    fn from_names(subject: &str, issuer: &str) -> Result<Self, CertError> {
        let unknown = || CertError::UnknownIdentity(subject.to_string());
        let parts = names::path_parts(subject).ok_or_else(unknown)?;
        match parts.as_slice() {
            ["users", "nobody"] => Ok(PeerIdentity::Nobody),
            ["users", node, device] => {
                let node_id = parse_node_id(node).ok_or_else(unknown)?;
                let expected_issuer = names::tenant_ca_cn(&hex::encode(node_id));
                if names::path_parts(issuer) != names::path_parts(&expected_issuer) {
                    return Err(CertError::UnknownIdentity(format!(
                        "{subject} is not issued by its tenant's CA (issuer {issuer})"
                    )));
                }
                Ok(PeerIdentity::Device {
                    node_id,
                    device: device.to_string(),
                })
            }
            ["services", name] => Ok(PeerIdentity::Service(name.to_string())),
            _ => Err(unknown()),
        }
    }
}

/// Parses a 66-character hex node id.
pub fn parse_node_id(hex_id: &str) -> Option<[u8; 33]> {
    let bytes = hex::decode(hex_id).ok()?;
    bytes.try_into().ok()
}

/// The first common name of an X.509 name, if any.
pub(crate) fn common_name(name: &x509_parser::x509::X509Name<'_>) -> Option<String> {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "02058e8b6c2ad363ec59aa136429256d745164c2bdc87f98f0a68690ec2c5c9b0b";

    #[test]
    fn nobody_and_devices_are_recognised() {
        assert_eq!(
            PeerIdentity::from_names("GL /users/nobody", "GL /users").unwrap(),
            PeerIdentity::Nobody
        );
        let id =
            PeerIdentity::from_names(&format!("/users/{A}/default"), &format!("GL /users/{A}"))
                .unwrap();
        assert!(matches!(id, PeerIdentity::Device { device, .. } if device == "default"));
    }

    #[test]
    fn a_device_under_another_tenants_ca_is_refused() {
        let b = "03".to_string() + &A[2..];
        let err =
            PeerIdentity::from_names(&format!("/users/{A}/default"), &format!("GL /users/{b}"));
        assert!(err.is_err());
    }

    #[test]
    fn malformed_names_are_refused() {
        for cn in [
            "",
            "users/x",
            "/users/zz/default",
            "/users/0203/default",
            "/other/x",
        ] {
            assert!(PeerIdentity::from_names(cn, "GL /users").is_err(), "{cn}");
        }
    }
}
