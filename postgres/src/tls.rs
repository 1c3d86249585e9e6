//! The TLS client for PostgreSQL: rustls with ring, the server's certificate verified
//! against the operator's CA file or the machine's roots.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::Error;
use crate::config::Roots;

/// A connector trusting `roots`.
pub fn connector(roots: &Roots) -> Result<MakeRustlsConnect, Error> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(file) => {
            let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(file)
                .and_then(|certs| certs.collect())
                .map_err(|e| {
                    Error::Tls(format!(
                        "cannot read the CA certificates in {} (sslrootcert): {e}",
                        file.display()
                    ))
                })?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(Error::Tls(format!(
                    "{} (sslrootcert) holds no CA certificate",
                    file.display()
                )));
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(Error::Tls(format!(
                    "this machine has no trusted root certificates to check the database's \
                     with ({}): install ca-certificates, or name the CA with sslrootcert=/path/ca.pem",
                    found
                        .errors
                        .first()
                        .map_or("none found".to_string(), |e| e.to_string())
                )));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests;
