//! Signer round trip through the proxy: an LDK signer call (ECDH, invoice signing) staged,
//! answered by the real VLS signer core with node-host storing the state (fsync) before the
//! answer is released. In process: no network or TLS in the figure.
//!
//! `cargo bench -p skylight-node-host --bench signer_round_trip`. `BENCH_CALLS` (default 500).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lightning_signer::lightning::sign::{NodeSigner, Recipient};
use skylight_client::secret::HsmSecret;
use skylight_node_host::signer_link::stage::Stage;
use skylight_node_host::store::kv::redb::RedbKv;
use skylight_node_host::store::signer_state::SignerState;

use skylight_test_support::in_process::{attach_signer, remote_keys};
use skylight_test_support::percentile;

fn main() {
    let calls: usize = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let dir = tempfile::tempdir().unwrap();
    let stage = Arc::new(Stage::new());
    let kv = RedbKv::shared(&dir.path().join("ldk.redb")).unwrap();
    let state = Arc::new(SignerState::open(kv.clone()).unwrap());
    let _signer = attach_signer(stage.clone(), state, HsmSecret::from_bytes([0x43; 32]));
    let keys = remote_keys(&stage, Duration::from_secs(30), kv);
    let other = bitcoin::secp256k1::SecretKey::from_slice(&[5; 32])
        .unwrap()
        .public_key(&bitcoin::secp256k1::Secp256k1::new());

    let mut lat = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        keys.ecdh(Recipient::Node, &other, None).unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "signer round trip (ECDH, stage -> VLS signer core, in process), {calls} calls: p50 {:.2} ms  p99 {:.2} ms",
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3
    );
}
