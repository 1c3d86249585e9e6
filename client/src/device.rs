//! The device key (P-256, made here, never sent) and the CSR that asks for its certificate.

use anyhow::{Context, Result};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

/// A fresh device key and a CSR for it with the given identity path as subject.
pub struct DeviceRequest {
    /// The device's private key, PKCS#8 PEM. Secret.
    pub key_pem: String,
    /// The CSR, PEM.
    pub csr_pem: String,
}

impl DeviceRequest {
    /// A new key and a CSR whose subject is `cn` (e.g. `/users/<node_id>/default`), with
    /// SAN `localhost` as Greenlight's clients send.
    pub fn new(cn: &str) -> Result<Self> {
        let key = KeyPair::generate().context("cannot generate the device key")?;
        let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        let csr = params.serialize_request(&key)?;
        Ok(DeviceRequest {
            key_pem: key.serialize_pem(),
            csr_pem: csr.pem()?,
        })
    }
}
