//! The operator's metrics, in Prometheus' text format on `GET /metrics`, and a plain
//! `GET /healthz`, on their own port (`--metrics-listen`), never the tenants' one.
//!
//! Counters and histograms are recorded where things happen (the `metrics` crate's global
//! recorder, rendered by `metrics-exporter-prometheus`); what is a state rather than an
//! event (tenants, running node-hosts, signer streams, the webhook queue) is read at each
//! scrape, so it can never drift from the truth. node-hosts count their signing requests
//! and payments and report them over the events socket (`ReportUsage`).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::shutdown::Shutdown;
use crate::state::State;

/// Registered tenants.
pub const TENANTS: &str = "skylight_tenants";
/// Registrations, by outcome.
pub const REGISTRATIONS: &str = "skylight_registrations_total";
/// Node-hosts running now.
pub const NODE_HOSTS_RUNNING: &str = "skylight_node_hosts_running";
/// `Schedule` and node-start latency, by `start` (`cold`: the node-host was started).
pub const SCHEDULE_SECONDS: &str = "skylight_schedule_seconds";
/// Signers attached to the scheduler's `SignerRequestsStream` now.
pub const SIGNER_STREAMS: &str = "skylight_signer_streams";
/// Signers that attached to a node's hsm stream.
pub const NODE_SIGNER_ATTACHMENTS: &str = "skylight_node_signer_attachments_total";
/// Signing requests signers answered, by `outcome` (`signed`, `refused`).
pub const SIGNING_REQUESTS: &str = "skylight_signing_requests_total";
/// From a signing request's staging on a node to its answer.
pub const SIGNING_SECONDS: &str = "skylight_signing_request_seconds";
/// Payments, by `direction` (`sent`, `received`).
pub const PAYMENTS: &str = "skylight_payments_total";
/// Webhook deliveries still to make.
pub const WEBHOOK_QUEUE: &str = "skylight_webhook_deliveries_pending";
/// The chain's height as the scheduler last saw it.
pub const CHAIN_HEIGHT: &str = "skylight_chain_height";
/// Calls refused by a limit, by `limit`.
pub const REFUSED_BY_LIMIT: &str = "skylight_refused_by_limit_total";

/// Latency buckets, seconds: from a warm `Schedule` (under a millisecond) to a slow start.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process's recorder, installed the first time it is asked for.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
            .expect("buckets are given")
            .build_recorder();
        let handle = recorder.handle();
        // Only fails if another recorder was set; none is in this program.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(TENANTS, "Registered tenants.");
    describe_counter!(REGISTRATIONS, "Register calls that made a tenant.");
    describe_gauge!(NODE_HOSTS_RUNNING, "Node-host processes running.");
    describe_histogram!(
        SCHEDULE_SECONDS,
        metrics::Unit::Seconds,
        "Time to hand a caller its node, by start=cold (node-host started) or warm."
    );
    describe_gauge!(SIGNER_STREAMS, "Signers attached to SignerRequestsStream.");
    describe_counter!(
        NODE_SIGNER_ATTACHMENTS,
        "Signers that attached to a node's hsm stream."
    );
    describe_counter!(
        SIGNING_REQUESTS,
        "Signing requests answered, by outcome=signed or refused."
    );
    describe_histogram!(
        SIGNING_SECONDS,
        metrics::Unit::Seconds,
        "From a signing request's staging on a node to the signer's answer."
    );
    describe_counter!(PAYMENTS, "Payments, by direction=sent or received.");
    describe_gauge!(WEBHOOK_QUEUE, "Webhook deliveries still to make.");
    describe_gauge!(CHAIN_HEIGHT, "The chain's height, as last seen.");
    describe_counter!(REFUSED_BY_LIMIT, "Calls refused by a limit, by limit.");
}

/// A tenant's node handed to a caller after `took`; `cold` if its node-host was started.
pub fn scheduled(took: Duration, cold: bool) {
    let start = if cold { "cold" } else { "warm" };
    metrics::histogram!(SCHEDULE_SECONDS, "start" => start).record(took.as_secs_f64());
}

/// A call refused by `limit`.
pub fn refused(limit: &'static str) {
    metrics::counter!(REFUSED_BY_LIMIT, "limit" => limit).increment(1);
}

/// What a node-host reported of its work.
pub fn usage(r: &skylight_proto::outbox::UsageReport) {
    let signed = r.signing_requests.saturating_sub(r.signing_refused);
    metrics::counter!(SIGNING_REQUESTS, "outcome" => "signed").increment(signed);
    metrics::counter!(SIGNING_REQUESTS, "outcome" => "refused").increment(r.signing_refused);
    let latency = metrics::histogram!(SIGNING_SECONDS);
    for s in &r.signing_seconds {
        if s.is_finite() && *s >= 0.0 {
            latency.record(*s);
        }
    }
    metrics::counter!(PAYMENTS, "direction" => "sent").increment(r.payments_sent);
    metrics::counter!(PAYMENTS, "direction" => "received").increment(r.payments_received);
    metrics::counter!(NODE_SIGNER_ATTACHMENTS).increment(r.signer_attachments);
}

/// Serves `/metrics` and `/healthz` on `listener` until `shutdown`; `/healthz` answers 503
/// from the moment the scheduler starts to stop.
pub async fn serve(listener: TcpListener, state: Arc<State>, shutdown: Shutdown) {
    let handle = handle();
    // The exporter keeps histogram samples until this runs; a scrape also runs it.
    let upkeep = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.wait() => return,
                    () = tokio::time::sleep(Duration::from_secs(5)) => handle.run_upkeep(),
                }
            }
        })
    };
    let stopping = shutdown.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || scrape(state.clone(), handle)),
        )
        .route(
            "/healthz",
            axum::routing::get(move || {
                let stopping = stopping.is_triggered();
                async move {
                    if stopping {
                        (StatusCode::SERVICE_UNAVAILABLE, "stopping\n")
                    } else {
                        (StatusCode::OK, "ok\n")
                    }
                }
            }),
        );
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await;
    if let Err(e) = served {
        tracing::warn!(error = %e, "the metrics server stopped");
    }
    upkeep.abort();
}

async fn scrape(state: Arc<State>, handle: &'static PrometheusHandle) -> impl IntoResponse {
    let store = state.store.clone();
    let counts =
        crate::state::blocking(move || Ok((store.tenant_count()?, store.queued_deliveries()?)))
            .await;
    match counts {
        Ok((tenants, queued)) => {
            metrics::gauge!(TENANTS).set(tenants as f64);
            metrics::gauge!(WEBHOOK_QUEUE).set(queued as f64);
        }
        // The rest is still worth having; the missing gauges keep their last value.
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the store"),
    }
    metrics::gauge!(NODE_HOSTS_RUNNING).set(state.nodes.running() as f64);
    metrics::gauge!(SIGNER_STREAMS).set(state.signers.streams() as f64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
}
