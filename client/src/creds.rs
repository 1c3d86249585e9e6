//! Device credentials in Greenlight's format (`credentials.gfs`), so a Greenlight client can
//! use what signer-cli registered and the other way round.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use prost::Message;
use skylight_proto::credentials::{CRED_VERSION, Device};

use crate::tls::TlsIdentity;

/// Builds credentials from a registration or recovery.
pub fn device(cert_pem: &str, key_pem: &str, ca_pem: &[u8]) -> Device {
    Device {
        version: CRED_VERSION,
        cert: cert_pem.as_bytes().to_vec(),
        key: key_pem.as_bytes().to_vec(),
        ca: ca_pem.to_vec(),
        // Minted from the seed by whoever holds it (`runes::RuneMaster::device_rune`):
        // signer-cli does before it saves these.
        rune: String::new(),
    }
}

/// Writes credentials, 0600 (they hold the device key), replacing any earlier ones
/// atomically.
pub fn save(path: &Path, creds: &Device) -> Result<()> {
    crate::files::replace_private(path, &creds.encode_to_vec())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads credentials.
pub fn load(path: &Path) -> Result<Device> {
    let bytes = fs::read(path).with_context(|| {
        format!(
            "cannot read {}: run `signer-cli register` or `signer-cli recover` first",
            path.display()
        )
    })?;
    Device::decode(bytes.as_slice())
        .with_context(|| format!("{} is not credentials", path.display()))
}

/// The TLS identity the credentials hold.
pub fn identity(creds: &Device) -> TlsIdentity {
    TlsIdentity {
        ca_pem: creds.ca.clone(),
        cert_pem: creds.cert.clone(),
        key_pem: creds.key.clone(),
    }
}
