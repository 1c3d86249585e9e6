//! `signer-cli export DIR`: the node leaves the scheduler. ExportNode stops the hosted node
//! for good and returns a URL; the file is downloaded, opened with this device's seed,
//! checked against its manifest and unpacked into DIR, which must be new.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use skylight_client::device_dir::DataDir;
use skylight_client::export::{archive, seal};
use skylight_client::keys::NodeKeys;
use skylight_client::secret::HsmSecret;
use skylight_client::tls;

/// Where the sealed file is kept beside the unpacked directory: it is the node's backup,
/// and only the seed opens it.
fn sealed_path(into: &Path) -> PathBuf {
    let name = into
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "node".into());
    into.with_file_name(format!("{name}.skylight-export"))
}

/// Runs `signer-cli export`.
pub async fn export(dir: &DataDir, into: &Path, yes: bool) -> Result<()> {
    // Refused before anything irreversible: the hosted node stops for good below.
    if into.exists() && std::fs::read_dir(into)?.next().is_some() {
        bail!(
            "{} is not empty: an export is never unpacked over another node; choose a new directory",
            into.display()
        );
    }
    let (uri, identity, settings) = crate::device_context(dir)?;
    let network: bitcoin::Network = settings.network.parse()?;
    let secret = HsmSecret::load(&dir.secret())?;
    let keys = NodeKeys::derive(&secret, network);
    if hex::encode(keys.node_id_bytes()) != settings.node_id {
        bail!("this device's seed is not node {}'s", settings.node_id);
    }
    if !yes {
        println!(
            "Exporting stops node {} at the scheduler for good: it never runs there again.",
            settings.node_id
        );
        if !crate::confirmed("export?")? {
            println!("not exported");
            return Ok(());
        }
    }
    let mut c = tls::scheduler(&uri, &identity).await?;
    let url = c
        .export_node(skylight_proto::scheduler::ExportNodeRequest {})
        .await
        .map_err(|status| tls::Refused {
            rpc: "ExportNode",
            status,
        })?
        .into_inner()
        .url;
    println!("export:    {url}");
    let sealed = download(&url, &identity.ca_pem).await?;
    let sealed_file = sealed_path(into);
    skylight_client::files::replace_private(&sealed_file, &sealed)
        .with_context(|| format!("cannot write {}", sealed_file.display()))?;
    let plain = seal::open(&keys, &sealed)?;
    let manifest = archive::unpack(&plain, into)?;
    if manifest.node_id != settings.node_id {
        bail!(
            "the export is of node {}, not {}: {} holds it, do not run it",
            manifest.node_id,
            settings.node_id,
            into.display()
        );
    }
    println!(
        "sealed:    {} ({} bytes)",
        sealed_file.display(),
        sealed.len()
    );
    println!(
        "unpacked:  {} ({} files, exported at unix {})",
        into.display(),
        manifest.files.len(),
        manifest.exported_at
    );
    println!();
    println!(
        "Next: run the node yourself (this imports it, once, into ~/.skylight/standalone/node):"
    );
    println!(
        "  node-host standalone --from-export {} --bitcoind-rpc http://HOST:PORT --bitcoind-cookie FILE",
        into.display()
    );
    println!("and attach this signer to it:");
    println!("  signer-cli run --node https://localhost:2610");
    println!("Never run a second copy of this node (another import of the same file, or a");
    println!("backup of its directory): two copies of one Lightning node can broadcast old");
    println!("channel states and lose every channel.");
    Ok(())
}

/// Downloads `url` over HTTPS, trusting only the scheduler's CA.
async fn download(url: &str, ca_pem: &[u8]) -> Result<Vec<u8>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.context("the scheduler's CA certificate")?)?;
    }
    let mut tls = rustls::ClientConfig::builder()
        .with_root_certificates(Arc::new(roots))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .build()?;
    let resp = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("cannot download {url}"))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        bail!("downloading {url}: {status}: {}", body.trim());
    }
    Ok(resp.bytes().await?.to_vec())
}
