//! Skylight's certificate authority.
//!
//! The hierarchy follows Greenlight's so that its clients accept it unchanged:
//!
//! ```text
//! GL /                         root (trusted by every client: ca.pem)
//! ├── GL /users                users CA
//! │   ├── GL /users/nobody     the anonymous identity
//! │   └── GL /users/<node_id>  one CA per tenant
//! │       ├── /users/<node_id>/<device>   device certificates, signed from client CSRs
//! │       └── GL /users/<node_id>/node    the tenant's node server certificate
//! └── GL /services             services CA
//!     └── GL /services/scheduler          the scheduler's server certificate
//! ```
//!
//! Keys are P-256 in PKCS#8. Leaves carry EKU serverAuth and clientAuth, as Greenlight's
//! do, and their common names may be longer than RFC 5280's 64 characters (a device CN
//! holds a 66-character node id). Only server certificates carry subject alternative
//! names: without one, a client identity (nobody, a device) cannot impersonate a server.
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod csr;
mod identity;
pub mod names;

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use time::OffsetDateTime;

pub use csr::DeviceCsr;
pub use identity::{PeerIdentity, parse_node_id};

/// Everything that can go wrong making, reading or signing certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen refused to build or sign a certificate.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A CSR could not be used; the text says why.
    #[error("{0}")]
    BadCsr(String),
    /// A certificate could not be parsed.
    #[error("unreadable certificate: {0}")]
    BadCertificate(String),
    /// A certificate's subject names no identity we know.
    #[error("unknown identity {0:?}")]
    UnknownIdentity(String),
}

/// How long something issued stays valid.
#[derive(Debug, Clone, Copy)]
pub struct Validity(pub Duration);

impl Validity {
    /// A validity of whole days.
    pub fn days(days: u64) -> Self {
        Validity(Duration::from_secs(days * 86_400))
    }

    /// Starts an hour in the past so a peer whose clock is a little behind still accepts it.
    fn apply(&self, params: &mut CertificateParams) {
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + self.0;
    }
}

/// A certificate and its private key, both PEM. The key is secret.
#[derive(Clone)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The PKCS#8 private key, PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// A certificate authority: its certificate and the key it signs with.
pub struct Authority {
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// A new self-signed root CA.
    pub fn new_root(validity: Validity) -> Result<Self, CertError> {
        let key = KeyPair::generate()?;
        let params = ca_params(names::ROOT_CN, validity)?;
        let cert = params.self_signed(&key)?;
        Self::load(&cert.pem(), &key.serialize_pem())
    }

    /// A new CA named `cn`, signed by this one.
    pub fn new_child_ca(&self, cn: &str, validity: Validity) -> Result<Self, CertError> {
        let key = KeyPair::generate()?;
        let params = ca_params(cn, validity)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Self::load(&cert.pem(), &key.serialize_pem())
    }

    /// Loads a CA from its certificate and key, both PEM.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(Authority {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            issuer,
        })
    }

    /// The CA's certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key, PEM. Secret: store it 0600.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Issues a leaf certificate with a fresh key: `cn` as subject, `dns_names` as SANs
    /// (IP literals become IP SANs), EKU serverAuth and clientAuth.
    pub fn issue_leaf(
        &self,
        cn: &str,
        dns_names: &[String],
        validity: Validity,
    ) -> Result<Issued, CertError> {
        let key = KeyPair::generate()?;
        let params = leaf_params(cn, dns_names, validity)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Issues a tenant's node server certificate (`GL /users/<node_id>/node`, SAN
    /// `localhost`, as Greenlight's clients verify node connections) under this tenant CA.
    pub fn issue_node_server(
        &self,
        node_id_hex: &str,
        validity: Validity,
    ) -> Result<Issued, CertError> {
        self.issue_leaf(
            &names::node_server_cn(node_id_hex),
            &["localhost".to_string()],
            validity,
        )
    }

    /// Signs a device certificate for the key in `csr`, with the subject rewritten to `cn`.
    ///
    /// Only the CSR's public key is used: whatever else it asks for (a CA flag, other
    /// names, other usages) is ignored, so a client cannot obtain more than a device
    /// certificate. It carries no subject alternative name: webpki matches server names
    /// only against SANs, so a device certificate can never pass for a server (the
    /// scheduler at `localhost`, say), while client authentication does not need one.
    pub fn sign_device(
        &self,
        csr: &DeviceCsr,
        cn: &str,
        validity: Validity,
    ) -> Result<String, CertError> {
        let params = leaf_params(cn, &[], validity)?;
        let cert = params.signed_by(&csr.public_key, &self.issuer)?;
        Ok(cert.pem())
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).expect("the operating system's random source failed");
    // A positive integer, as RFC 5280 requires.
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

fn base_params(
    cn: &str,
    sans: &[String],
    validity: Validity,
) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::new(sans.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "Skylight");
    params.distinguished_name = dn;
    params.serial_number = Some(random_serial());
    params.use_authority_key_identifier_extension = true;
    validity.apply(&mut params);
    Ok(params)
}

fn ca_params(cn: &str, validity: Validity) -> Result<CertificateParams, CertError> {
    let mut params = base_params(cn, &[], validity)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn leaf_params(
    cn: &str,
    sans: &[String],
    validity: Validity,
) -> Result<CertificateParams, CertError> {
    let mut params = base_params(cn, sans, validity)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    Ok(params)
}

/// Reads the expiry (unix seconds) of the first certificate in a PEM string.
pub fn not_after(cert_pem: &str) -> Result<i64, CertError> {
    let der = first_der(cert_pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| CertError::BadCertificate(e.to_string()))?;
    Ok(cert.validity().not_after.timestamp())
}

/// The subject common name of the first certificate in a PEM string.
pub fn subject_cn(cert_pem: &str) -> Result<String, CertError> {
    let der = first_der(cert_pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| CertError::BadCertificate(e.to_string()))?;
    identity::common_name(cert.subject())
        .ok_or_else(|| CertError::BadCertificate("certificate has no common name".into()))
}

/// The DER of the first certificate in a PEM string.
pub fn first_der(cert_pem: &str) -> Result<Vec<u8>, CertError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .next()
        .ok_or_else(|| CertError::BadCertificate("no certificate in PEM".into()))?
        .map(|c| c.to_vec())
        .map_err(|e| CertError::BadCertificate(e.to_string()))
}

#[cfg(test)]
mod tests;
