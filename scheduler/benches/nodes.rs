//! Schedule → ready latency (cold: the node-host starts; warm: it runs) and an idle
//! node-host's resident memory, against the real release binaries.
//!
//! `cargo build --release --bins && cargo bench -p skylight-scheduler --bench nodes`
//! (node-host must sit next to the scheduler binary). `BENCH_TENANTS` (default 10).

mod common;

use std::time::{Duration, Instant};

use bitcoin::Network;
use skylight_proto::scheduler::{NodeInfoRequest, ScheduleRequest};
use skylight_signer_cli::client;
use skylight_signer_cli::keys::NodeKeys;
use skylight_signer_cli::secret::HsmSecret;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[tokio::main]
async fn main() {
    let tenants: usize = std::env::var("BENCH_TENANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let scheduler = std::path::PathBuf::from(env!("CARGO_BIN_EXE_scheduler"));
    let node_host = scheduler.with_file_name("node-host");
    if !node_host.exists() {
        eprintln!(
            "{} is missing: run `cargo build --release --bins` first",
            node_host.display()
        );
        std::process::exit(2);
    }
    let running = common::start(&scheduler, &[]).await;
    let (uri, dir, nobody) = (&running.uri, &running.dir, &running.nobody);

    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..tenants {
        let keys = NodeKeys::derive(
            &HsmSecret::from_bytes(bitcoin::secp256k1::rand::random()),
            Network::Regtest,
        );
        let creds = skylight_signer_cli::identity::register(uri, nobody, &keys, "regtest", None)
            .await
            .expect("register");
        let device = skylight_signer_cli::creds::identity(&creds);
        let mut c = client::scheduler(uri, &device).await.unwrap();
        let t = Instant::now();
        c.schedule(ScheduleRequest::default())
            .await
            .expect("schedule");
        cold.push(t.elapsed());
        for _ in 0..10 {
            let t = Instant::now();
            c.schedule(ScheduleRequest::default())
                .await
                .expect("schedule");
            warm.push(t.elapsed());
        }
        let _ = c
            .get_node_info(NodeInfoRequest {
                node_id: vec![],
                wait: false,
            })
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let pid: u32 = std::fs::read_to_string(
            dir.join("nodes")
                .join(hex::encode(keys.node_id_bytes()))
                .join("node-host.pid"),
        )
        .unwrap()
        .trim()
        .parse()
        .unwrap();
        if let Some(kib) = rss_kib(pid) {
            rss.push(kib);
        }
    }
    cold.sort();
    warm.sort();
    rss.sort();
    println!(
        "{tenants} tenants, one node-host each, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "schedule -> ready, cold (node-host starts):  p50 {:>7.1} ms  p99 {:>7.1} ms",
        ms(percentile(&cold, 0.5)),
        ms(percentile(&cold, 0.99))
    );
    println!(
        "schedule -> ready, warm (already running):   p50 {:>7.2} ms  p99 {:>7.2} ms",
        ms(percentile(&warm, 0.5)),
        ms(percentile(&warm, 0.99))
    );
    if !rss.is_empty() {
        println!(
            "idle node-host RSS (signer link only, no LDK node yet): median {} KiB, max {} KiB",
            rss[rss.len() / 2],
            rss[rss.len() - 1]
        );
    }
}
