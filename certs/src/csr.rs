//! Certificate signing requests from devices.

use rcgen::CertificateSigningRequestParams;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY};
use x509_parser::prelude::FromDer;

use crate::{CertError, identity, names};

/// A device's CSR, checked: it parses, it is signed by the key it carries (so the requester
/// holds that key), and the key is ECDSA P-256 (Greenlight's clients sign node requests
/// with it).
#[derive(Debug, Clone)]
pub struct DeviceCsr {
    pub(crate) public_key: rcgen::PublicKey,
    subject_cn: Option<String>,
}

impl DeviceCsr {
    /// The requested key's raw public key (for P-256, the 65-byte uncompressed point: what
    /// a device's rune names).
    pub fn public_key_raw(&self) -> Vec<u8> {
        use rcgen::PublicKeyData;
        self.public_key.der_bytes().to_vec()
    }

    /// Parses and checks a PEM CSR.
    pub fn from_pem(pem: &[u8]) -> Result<Self, CertError> {
        let text = std::str::from_utf8(pem)
            .map_err(|_| CertError::BadCsr("the CSR is not PEM text".into()))?;
        if text.trim().is_empty() {
            return Err(CertError::BadCsr("no CSR was sent".into()));
        }
        let der = pem_der(text)?;
        let (_, raw) = X509CertificationRequest::from_der(&der)
            .map_err(|e| CertError::BadCsr(format!("the CSR does not parse: {e}")))?;
        let spki = &raw.certification_request_info.subject_pki;
        let is_p256 = spki.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY
            && spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .is_some_and(|curve| curve == OID_EC_P256);
        if !is_p256 {
            return Err(CertError::BadCsr(
                "the CSR's key is not ECDSA P-256, which device keys must be".into(),
            ));
        }
        let subject_cn = identity::common_name(&raw.certification_request_info.subject);
        let params = CertificateSigningRequestParams::from_der(&der.as_slice().into()).map_err(
            |e| match e {
                rcgen::Error::InvalidCertificationRequestSignature => CertError::BadCsr(
                    "the CSR's signature does not verify with the key it carries".into(),
                ),
                other => CertError::BadCsr(format!("the CSR cannot be used: {other}")),
            },
        )?;
        Ok(DeviceCsr {
            public_key: params.public_key,
            subject_cn,
        })
    }

    /// The node id named by the CSR's subject (`/users/<node_id>/…`), if it names one.
    pub fn named_node(&self) -> Option<[u8; 33]> {
        let cn = self.subject_cn.as_deref()?;
        match names::path_parts(cn)?.as_slice() {
            ["users", node, ..] => identity::parse_node_id(node),
            _ => None,
        }
    }

    /// The CSR's subject common name.
    pub fn subject_cn(&self) -> Option<&str> {
        self.subject_cn.as_deref()
    }
}

fn pem_der(text: &str) -> Result<Vec<u8>, CertError> {
    use rustls_pki_types::CertificateSigningRequestDer;
    use rustls_pki_types::pem::PemObject;
    CertificateSigningRequestDer::from_pem_slice(text.as_bytes())
        .map(|d| d.as_ref().to_vec())
        .map_err(|_| CertError::BadCsr("the CSR is not a PEM `CERTIFICATE REQUEST`".into()))
}
