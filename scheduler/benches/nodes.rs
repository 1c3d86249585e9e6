//! Against the real release binaries: schedule → ready latency (cold: the node-host starts;
//! warm: it runs), an idle node-host's resident memory, and, with the real signer attached
//! over gRPC, the time for the LDK node to start, the latency of a signed `Invoice` call (one
//! signer round trip: node-host → hsm stream → VLS → RespondHsmRequest → node-host) and the
//! resident memory of a node-host running LDK.
//!
//! `cargo build --release --bins && cargo bench -p skylight-scheduler --bench nodes`
//! (node-host must sit next to the scheduler binary). `BENCH_TENANTS` (default 10),
//! `BENCH_INVOICES` (default 200, on each of the first 3 tenants).

use skylight_test_support::{NewTenant, Scheduler, ms, percentile, register_new_tenant};

use std::time::{Duration, Instant};

use bitcoin::Network;
use skylight_client::secret::HsmSecret;
use skylight_client::tls;
use skylight_proto::scheduler::{NodeInfoRequest, ScheduleRequest};

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
    let running = Scheduler::start_unthrottled().expect("start the scheduler");
    let nobody = running.nobody();
    let (uri, nobody) = (&running.uri, &nobody);

    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut rss = Vec::new();
    let invoices: usize = std::env::var("BENCH_INVOICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut with_signer: Vec<Signed> = Vec::new();
    for _ in 0..tenants {
        let NewTenant {
            secret,
            keys,
            device,
        } = register_new_tenant(uri, nobody).await;
        let mut c = tls::scheduler(uri, &device).await.unwrap();
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
        let pid: u32 =
            std::fs::read_to_string(running.node_dir(&hex::encode(keys.node_id_bytes())).pid())
                .unwrap()
                .trim()
                .parse()
                .unwrap();
        if let Some(kib) = rss_kib(pid) {
            rss.push(kib);
        }
        if with_signer.len() < 3 {
            with_signer.push(signed_invoices(uri, device, secret, invoices, pid).await);
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
            "idle node-host RSS (no signer yet, LDK node not started): median {} KiB, max {} KiB",
            rss[rss.len() / 2],
            rss[rss.len() - 1]
        );
    }
    let mut starts: Vec<Duration> = with_signer.iter().map(|w| w.start).collect();
    starts.sort();
    let mut calls: Vec<Duration> = with_signer.iter().flat_map(|w| w.calls.clone()).collect();
    calls.sort();
    let mut running_rss: Vec<u64> = with_signer.iter().filter_map(|w| w.rss_kib).collect();
    running_rss.sort();
    println!(
        "signer attach -> LDK node running ({} tenants): median {:.1} ms, max {:.1} ms",
        starts.len(),
        ms(starts[starts.len() / 2]),
        ms(starts[starts.len() - 1])
    );
    println!(
        "signed Invoice call, one signer round trip ({} calls): p50 {:.2} ms  p99 {:.2} ms",
        calls.len(),
        ms(percentile(&calls, 0.5)),
        ms(percentile(&calls, 0.99))
    );
    if !running_rss.is_empty() {
        println!(
            "node-host RSS with the LDK node running and {} invoices made: median {} KiB, max {} KiB",
            invoices,
            running_rss[running_rss.len() / 2],
            running_rss[running_rss.len() - 1]
        );
    }
}

/// What one tenant with its signer attached measured.
struct Signed {
    start: Duration,
    calls: Vec<Duration>,
    rss_kib: Option<u64>,
}

/// Attaches the real signer (signer-cli's run loop, in this process, over gRPC), waits for
/// the LDK node to run, then makes `count` invoices one after another.
async fn signed_invoices(
    uri: &str,
    device: tls::TlsIdentity,
    secret: HsmSecret,
    count: usize,
    pid: u32,
) -> Signed {
    use skylight_client::node;
    use skylight_client::signed_request::RequestSigner;
    use skylight_proto::cln::{GetinfoRequest, InvoiceRequest};
    let signer = skylight_client::signer::Signer::new(&secret, Network::Regtest);
    let t = Instant::now();
    tokio::spawn(skylight_client::follow::run(
        uri.to_string(),
        device.clone(),
        signer,
        std::future::pending(),
    ));
    let sign = RequestSigner::new(&device.key_pem).unwrap();
    let mut node = node::connect(uri, &device).await.unwrap();
    loop {
        let info = node
            .getinfo(sign.sign(GetinfoRequest {}).unwrap())
            .await
            .expect("getinfo")
            .into_inner();
        if info.warning_lightningd_sync.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let start = t.elapsed();
    let mut calls = Vec::with_capacity(count);
    for i in 0..count {
        let req = InvoiceRequest {
            label: format!("bench-{i}"),
            description: "bench".into(),
            amount_msat: Some(skylight_proto::cln::AmountOrAny {
                value: Some(skylight_proto::cln::amount_or_any::Value::Amount(
                    skylight_proto::cln::Amount { msat: 1000 },
                )),
            }),
            ..Default::default()
        };
        let t = Instant::now();
        node.invoice(sign.sign(req).unwrap())
            .await
            .expect("invoice");
        calls.push(t.elapsed());
    }
    Signed {
        start,
        calls,
        rss_kib: rss_kib(pid),
    }
}
