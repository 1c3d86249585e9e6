//! What both measures record, the same way: each payment's latency and the signer round
//! trips it took.

use std::time::{Duration, Instant};

use skylight_proto::cln as pb;

/// One side's figures.
#[derive(Default)]
pub struct Measured {
    /// Latencies, in the order the payments were made.
    pub latencies: Vec<Duration>,
    /// Round trips, payer and payee together, sorted once [`Measured::done`].
    pub round_trips: Vec<u64>,
}

impl Measured {
    /// Times `pay` (one payment, request to `PaymentSent`) and counts the signer answers
    /// `answered` saw for it, both sides together.
    pub async fn record(&mut self, answered: impl Fn() -> u64, pay: impl Future<Output = ()>) {
        let before = answered();
        let t = Instant::now();
        pay.await;
        self.latencies.push(t.elapsed());
        // The payee's last steps (its revocation, the claim) finish just after the payer
        // hears of success: let them settle before counting.
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.round_trips.push(answered() - before);
    }

    /// The figures, round trips sorted.
    pub fn done(mut self) -> Self {
        self.round_trips.sort();
        self
    }
}

/// The payee's invoice for payment `i`: 1,000 sat.
pub fn invoice_request(i: usize) -> pb::InvoiceRequest {
    pb::InvoiceRequest {
        label: format!("bench-{i}"),
        description: "bench".into(),
        amount_msat: Some(pb::AmountOrAny {
            value: Some(pb::amount_or_any::Value::Amount(pb::Amount {
                msat: 1_000_000,
            })),
        }),
        ..Default::default()
    }
}
