//! A payment between two tenants, remote signing against its floor.
//!
//! Remote: the real release binaries: the scheduler (embedded chain), two node-hosts, and
//! two signers (signer-cli's run loop, in this process, over gRPC). The floor: the same
//! payment with each signer in its node's process (see `floor.rs`). Prints, for
//! each, the latency of a `Pay` call from request to `PaymentSent` (p50, p99) and the
//! signer round trips per payment (both sides together), then their ratio.
//!
//! `cargo build --release --bins && cargo bench -p skylight-node-host --bench payments`
//! (`BENCH_PAYMENTS`, default 100; `BENCH_ONLY=remote` or `floor` for one side;
//! `BENCH_NODE_STATE=postgres` keeps the remote node-hosts' state in a PostgreSQL server
//! started for the run, each write fenced by the tenant's lease).

mod floor;
mod measure;
use measure::{Measured, invoice_request};
use skylight_test_support::app::AppTenant;
use skylight_test_support::{Scheduler, ms, percentile};

use std::sync::atomic::Ordering;
use std::time::Duration;

use skylight_client::follow::ANSWERED;
use skylight_proto::cln::{self as pb};

fn main() {
    // Quiet unless asked (`RUST_LOG=ldk=debug`, say, traces the floor's nodes).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into()),
        )
        .init();
    let count: usize = std::env::var("BENCH_PAYMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    // One after the other, so that neither measure shares the machine with the other.
    // `BENCH_ONLY=floor` (or `remote`) runs one of them.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let remote = (only != "floor").then(|| {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(remote(count))
    });
    let floor = (only != "remote").then(|| floor::run(count));

    println!(
        "{count} payments A -> B over one channel, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!("Pay call, request -> PaymentSent:");
    let sorted = |l: &[Duration]| {
        let mut l = l.to_vec();
        l.sort();
        l
    };
    let line = |what: &str, m: &Measured| {
        let all = sorted(&m.latencies);
        let quarter = m.latencies.len().div_ceil(4);
        let first = sorted(&m.latencies[..quarter]);
        let last = sorted(&m.latencies[m.latencies.len() - quarter..]);
        println!(
            "  {what}: p50 {:.1} ms  p99 {:.1} ms (p50 of the first quarter {:.1} ms, of the last {:.1} ms); signer round trips per payment, both sides: median {}, min {}, max {}",
            ms(percentile(&all, 0.5)),
            ms(percentile(&all, 0.99)),
            ms(percentile(&first, 0.5)),
            ms(percentile(&last, 0.5)),
            m.round_trips[m.round_trips.len() / 2],
            m.round_trips[0],
            m.round_trips[m.round_trips.len() - 1]
        )
    };
    if let Some(remote) = &remote {
        line("remote signing (two signers over gRPC)", remote);
    }
    if let Some(floor) = &floor {
        line("the floor (each signer in its node's process)", floor);
    }
    let (Some(remote), Some(floor)) = (remote, floor) else {
        return;
    };
    let (remote, floor) = (sorted(&remote.latencies), sorted(&floor.latencies));
    let ratio = |p| ms(percentile(&remote, p)) / ms(percentile(&floor, p));
    println!(
        "  remote / floor: p50 {:.2}x  p99 {:.2}x",
        ratio(0.5),
        ratio(0.99)
    );
}

/// The payments through the real binaries, with remote signers.
async fn remote(count: usize) -> Measured {
    // `BENCH_NODE_LOG` is the node-hosts' RUST_LOG (their logs are in the scheduler's
    // temporary directory while the bench runs).
    let node_log = std::env::var("BENCH_NODE_LOG").unwrap_or_else(|_| "warn".into());
    let state = skylight_test_support::postgres::BenchNodeState::from_env();
    println!("remote node state: {}", state.name);
    let mut args = vec!["--require-invite", "false"];
    args.extend(state.args.iter().map(String::as_str));
    let running = Scheduler::start_with_env(&args, &[("RUST_LOG", node_log.as_str())])
        .expect("start the scheduler (build the release binaries first)");
    let (uri, nobody) = (&running.uri, running.nobody());
    let (mut a, _a_signer) = AppTenant::start(uri, &nobody).await;
    let (mut b, _b_signer) = AppTenant::start(uri, &nobody).await;
    a.open_channel(&running, &mut b, 5_000_000_000).await;

    let mut measured = Measured::default();
    for i in 0..count {
        let invoice = b
            .node
            .invoice(b.sign.sign(invoice_request(i)).unwrap())
            .await
            .unwrap()
            .into_inner()
            .bolt11;
        let pay = a
            .sign
            .sign(pb::PayRequest {
                bolt11: invoice,
                ..Default::default()
            })
            .unwrap();
        let node = &mut a.node;
        measured
            .record(|| ANSWERED.load(Ordering::Relaxed), async {
                node.pay(pay).await.expect("pay");
            })
            .await;
    }
    measured.done()
}
