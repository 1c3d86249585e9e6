//! The operator's `/metrics` (Prometheus' text format) and `/healthz`, scraped from the
//! real scheduler over HTTP after real registrations, schedules and payments.

use skylight_test_support::pair::{self, Pair};
use skylight_test_support::{Scheduler, SignerCli, eventually};

fn value(s: &Scheduler, series: &str) -> f64 {
    s.metric(series)
        .unwrap()
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
}

#[test]
fn metrics_count_registrations_and_cold_and_warm_schedules() {
    let s = Scheduler::start(&[]).unwrap();
    assert_eq!(s.http_get("/healthz").unwrap(), (200, "ok\n".to_string()));
    let (status, text) = s.http_get("/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(text.contains("# TYPE skylight_tenants gauge"), "{text}");
    assert_eq!(value(&s, "skylight_tenants"), 0.0);
    assert_eq!(value(&s, "skylight_node_hosts_running"), 0.0);
    assert_eq!(s.http_get("/nothing").unwrap().0, 404);

    let cli = SignerCli::registered(&s).unwrap();
    assert_eq!(value(&s, "skylight_tenants"), 1.0);
    assert_eq!(value(&s, "skylight_registrations_total"), 1.0);

    let first = cli.run(&["schedule"]).unwrap();
    assert!(first.ok, "{}", first.stderr);
    assert_eq!(value(&s, "skylight_node_hosts_running"), 1.0);
    assert_eq!(
        value(&s, "skylight_schedule_seconds_count{start=\"cold\"}"),
        1.0
    );
    let again = cli.run(&["schedule"]).unwrap();
    assert!(again.ok, "{}", again.stderr);
    assert_eq!(
        value(&s, "skylight_schedule_seconds_count{start=\"warm\"}"),
        1.0
    );
    assert_eq!(
        value(&s, "skylight_schedule_seconds_count{start=\"cold\"}"),
        1.0,
        "a running node is not started again"
    );
    // A histogram, with buckets a dashboard can add up across schedulers.
    assert!(
        value(
            &s,
            "skylight_schedule_seconds_bucket{start=\"cold\",le=\"+Inf\"}"
        ) == 1.0,
        "{}",
        s.http_get("/metrics").unwrap().1
    );
    assert_eq!(value(&s, "skylight_webhook_deliveries_pending"), 0.0);
}

#[test]
fn node_hosts_report_their_signing_requests_and_payments() {
    let p = Pair::with_channel();
    let bolt11 = pair::invoice(&p.b, 50_000, "metered");
    p.a.call(&["pay", &bolt11]);
    eventually("B is paid", || pair::paid(&p.b, "metered"));

    // Node-hosts report about once a second.
    eventually("both ends of the payment are counted", || {
        p.s.metric("skylight_payments_total{direction=\"sent\"}")
            .unwrap()
            == Some(1.0)
            && p.s
                .metric("skylight_payments_total{direction=\"received\"}")
                .unwrap()
                == Some(1.0)
    });
    let signed = value(&p.s, "skylight_signing_requests_total{outcome=\"signed\"}");
    let refused = value(&p.s, "skylight_signing_requests_total{outcome=\"refused\"}");
    assert!(signed > 0.0, "a channel and a payment took no signature?");
    // Every answered request has its latency recorded (far fewer than the cap here).
    eventually("every answer's latency is in the histogram", || {
        p.s.metric("skylight_signing_request_seconds_count")
            .unwrap()
            == Some(
                value(&p.s, "skylight_signing_requests_total{outcome=\"signed\"}")
                    + value(&p.s, "skylight_signing_requests_total{outcome=\"refused\"}"),
            )
    });
    assert!(signed + refused >= 1.0);
    assert!(value(&p.s, "skylight_node_signer_attachments_total") >= 2.0);
    assert_eq!(value(&p.s, "skylight_tenants"), 2.0);
    assert_eq!(value(&p.s, "skylight_node_hosts_running"), 2.0);
    let tip = pair::height(&p.s) as f64;
    eventually("the chain's height is the tip's", || {
        p.s.metric("skylight_chain_height").unwrap() == Some(tip)
    });
}
