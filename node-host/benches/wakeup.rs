//! Waking a tenant that scaled to zero, as a phone app does: its node-host has stopped
//! (idle), it has one channel; the app starts its signer and pays at once.
//!
//! The real release binaries (the scheduler with its embedded chain, node-hosts started on
//! demand and stopped after 1 s idle), the signers in this process. Each round: the
//! payer's signer stops, its node-host idles out and exits; then the clock starts, the
//! signer starts and `Pay` is called at once. Prints p50 and p99 over the rounds of the
//! time to the node API answering (Schedule, node-host start) and to the payment sent.
//!
//! `cargo build --release --bins && cargo bench -p skylight-node-host --bench wakeup`
//! (`BENCH_WAKEUPS`, default 20; `BENCH_NODE_STATE=postgres` keeps node state in a
//! PostgreSQL server started for the run).

use std::time::{Duration, Instant};

use skylight_test_support::app::AppTenant;
use skylight_test_support::{Scheduler, alive, ms, node_pid, percentile};

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into()),
        )
        .init();
    let rounds: usize = std::env::var("BENCH_WAKEUPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(run(rounds));
}

async fn run(rounds: usize) {
    let state = skylight_test_support::postgres::BenchNodeState::from_env();
    println!("node state: {}", state.name);
    let mut args = vec!["--require-invite", "false", "--node-idle-timeout", "1"];
    args.extend(state.args.iter().map(String::as_str));
    let running = Scheduler::start_with_env(&args, &[("RUST_LOG", "warn")])
        .expect("start the scheduler (build the release binaries first)");
    let (uri, nobody) = (&running.uri, running.nobody());
    let (mut a, a_signer) = AppTenant::start(uri, &nobody).await;
    let (mut b, _b_signer) = AppTenant::start(uri, &nobody).await;
    a.open_channel(&running, &mut b, 1_000_000_000).await;
    let a_hex = hex::encode(&a.id);

    let mut signer = Some(a_signer);
    let (mut reachable, mut paid) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let invoice = b.invoice(&format!("wake-{i}"), 1_000_000).await;
        // Asleep: the signer stops, and the node-host stops once idle.
        let pid = node_pid(&running, &a_hex).expect("the node-host runs");
        signer.take().unwrap().stop().await;
        while alive(pid) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Awake: the signer starts and the app pays at once.
        let t = Instant::now();
        signer = Some(a.start_signer());
        a.reconnect().await;
        reachable.push(t.elapsed());
        a.pay(invoice).await;
        paid.push(t.elapsed());
    }
    reachable.sort();
    paid.sort();
    println!(
        "{rounds} wake-ups of a tenant scaled to zero (node-host stopped, one channel), {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "  signer started -> node API answers: p50 {:.0} ms  p99 {:.0} ms",
        ms(percentile(&reachable, 0.5)),
        ms(percentile(&reachable, 0.99))
    );
    println!(
        "  signer started -> payment sent:     p50 {:.0} ms  p99 {:.0} ms",
        ms(percentile(&paid, 0.5)),
        ms(percentile(&paid, 0.99))
    );
}
