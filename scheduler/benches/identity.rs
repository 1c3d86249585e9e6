//! GetChallenge/s and Register/s over mutual TLS against the real `scheduler` binary.
//!
//! `cargo bench -p skylight-scheduler --bench identity` (release build). Prints figures; asserts
//! nothing about time. Environment: `BENCH_CHALLENGES` (default 20000), `BENCH_REGISTERS`
//! (default 1000), `BENCH_CONCURRENCY` (default 16).

use skylight_test_support::{Scheduler, percentile};

use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::Network;
use skylight_certs::names;
use skylight_client::device::DeviceRequest;
use skylight_client::keys::NodeKeys;
use skylight_client::secret::HsmSecret;
use skylight_client::tls;
use skylight_proto::scheduler::scheduler_client::SchedulerClient;
use skylight_proto::scheduler::{ChallengeRequest, ChallengeScope, RegistrationRequest};
use tonic::transport::Channel;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn report(what: &str, count: usize, elapsed: Duration, mut lat: Vec<Duration>) {
    lat.sort();
    println!(
        "{what:<12} {count:>6} in {:>6.2} s = {:>8.0}/s   latency p50 {:>6.2} ms  p99 {:>6.2} ms",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
    );
}

async fn run_concurrently<F, Fut>(
    concurrency: usize,
    total: usize,
    f: F,
) -> (Duration, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (f, next) = (f.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                f(i).await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (start.elapsed(), all)
}

#[tokio::main]
async fn main() {
    let challenges = env_or("BENCH_CHALLENGES", 20_000);
    let registers = env_or("BENCH_REGISTERS", 1_000);
    let concurrency = env_or("BENCH_CONCURRENCY", 16);

    let running = Scheduler::start_unthrottled().expect("start the scheduler");
    let (uri, nobody) = (running.uri.clone(), running.nobody());
    let channel: Channel = tls::channel(&uri, &nobody).await.unwrap();
    println!(
        "scheduler {uri}: {} cores, concurrency {concurrency}, one mTLS connection (HTTP/2)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    // GetChallenge: what the server does per challenge is a random draw and a map insert.
    let node_id =
        NodeKeys::derive(&HsmSecret::from_bytes([7; 32]), Network::Regtest).node_id_bytes();
    let ch = channel.clone();
    let (elapsed, lat) = run_concurrently(concurrency, challenges, move |_| {
        let mut c = SchedulerClient::new(ch.clone());
        async move {
            c.get_challenge(ChallengeRequest {
                scope: ChallengeScope::Register as i32,
                node_id: node_id.to_vec(),
            })
            .await
            .expect("GetChallenge");
        }
    })
    .await;
    report("GetChallenge", challenges, elapsed, lat);

    // Register: keys and CSRs are made before the clock starts, so this measures the
    // scheduler (challenge, signature check, tenant CA, device certificate, durable commit)
    // plus the client's two round trips.
    let prepared: Arc<Vec<(NodeKeys, Vec<u8>)>> = Arc::new(
        (0..registers)
            .map(|_| {
                let keys = NodeKeys::derive(
                    &HsmSecret::from_bytes(bitcoin::secp256k1::rand::random()),
                    Network::Regtest,
                );
                let cn = names::device_cn(&hex::encode(keys.node_id_bytes()), "default");
                let csr = DeviceRequest::new(&cn).unwrap().csr_pem.into_bytes();
                (keys, csr)
            })
            .collect(),
    );
    let ch = channel.clone();
    let (elapsed, lat) = run_concurrently(concurrency, registers, move |i| {
        let mut c = SchedulerClient::new(ch.clone());
        let prepared = prepared.clone();
        async move {
            let (keys, csr) = &prepared[i];
            let challenge = c
                .get_challenge(ChallengeRequest {
                    scope: ChallengeScope::Register as i32,
                    node_id: keys.node_id_bytes().to_vec(),
                })
                .await
                .expect("GetChallenge")
                .into_inner()
                .challenge;
            c.register(RegistrationRequest {
                node_id: keys.node_id_bytes().to_vec(),
                network: "regtest".into(),
                signature: keys.sign_challenge(&challenge).to_vec(),
                challenge,
                csr: csr.clone(),
                ..Default::default()
            })
            .await
            .expect("Register");
        }
    })
    .await;
    report("Register", registers, elapsed, lat);
}
