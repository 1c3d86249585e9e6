//! Starting the real scheduler binary for a benchmark, and the nobody identity to reach it.

// Shared by several benches, each using only some of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bitcoin::Network;
use skylight_signer_cli::client::TlsIdentity;
use skylight_signer_cli::keys::NodeKeys;
use skylight_signer_cli::secret::HsmSecret;

/// A running scheduler in a temporary directory; stopped (SIGTERM) when dropped.
pub struct Running {
    /// `https://localhost:<port>`.
    pub uri: String,
    /// Its data directory.
    pub dir: PathBuf,
    /// The nobody identity.
    pub nobody: TlsIdentity,
    child: Child,
    _tmp: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Starts `binary run` on ephemeral ports, without invite codes, with `extra` arguments.
pub async fn start(binary: &std::path::Path, extra: &[&str]) -> Running {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("scheduler");
    let child = Command::new(binary)
        .arg("--data-dir")
        .arg(&dir)
        .args([
            "run",
            "--listen",
            "127.0.0.1:0",
            "--chain-rpc-listen",
            "127.0.0.1:0",
        ])
        .args(["--require-invite", "false"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start scheduler");
    let deadline = Instant::now() + Duration::from_secs(30);
    let uri = loop {
        if let Ok(u) = std::fs::read_to_string(dir.join("grpc-uri")) {
            break u.trim().to_string();
        }
        assert!(Instant::now() < deadline, "scheduler did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let nobody = TlsIdentity {
        ca_pem: read("ca.pem"),
        cert_pem: read("nobody.crt"),
        key_pem: read("nobody-key.pem"),
    };
    Running {
        uri,
        dir,
        nobody,
        child,
        _tmp: tmp,
    }
}

/// The `p` quantile of `sorted` (0.5 for the median).
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Milliseconds, for printing.
#[allow(dead_code)] // Not every bench prints milliseconds.
pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
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
    let creds = skylight_signer_cli::identity::register(uri, nobody, &keys, "regtest", None)
        .await
        .expect("register");
    let device = skylight_signer_cli::creds::identity(&creds);
    NewTenant {
        secret,
        keys,
        device,
    }
}
