//! What the operator sets for webhooks: which targets are allowed, how long an attempt may
//! take, and the waits between attempts.

use std::time::Duration;

/// The waits between attempts unless the operator says: Standard Webhooks' schedule,
/// stretched with two more days so a receiver down over a weekend still gets its events
/// (about 3.3 days from the first attempt to the last).
pub const DEFAULT_RETRY_SCHEDULE: &str = "5s,5m,30m,2h,5h,10h,10h,24h,24h";

/// `scheduler run`'s webhook flags.
#[derive(clap::Args, Debug, Clone)]
pub struct WebhookArgs {
    /// Allow webhook URLs with plain http:// (receivers on a private network, tests);
    /// without it they must be https://.
    #[arg(long, env = "SKYLIGHT_WEBHOOK_ALLOW_HTTP")]
    pub webhook_allow_http: bool,
    /// Allow webhook targets on loopback, link-local and private addresses. Without it a
    /// tenant's webhook cannot reach into the network the scheduler runs in.
    #[arg(long, env = "SKYLIGHT_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,
    /// Seconds one delivery attempt may take (connecting, sending, the receiver's answer).
    #[arg(long, env = "SKYLIGHT_WEBHOOK_TIMEOUT", default_value_t = 30)]
    pub webhook_timeout: u64,
    /// The waits between a delivery's attempts, comma-separated (`ms`, `s`, `m`, `h`, `d`);
    /// one attempt more than there are waits, then it is given up (`scheduler webhooks
    /// failed` lists it).
    #[arg(long, env = "SKYLIGHT_WEBHOOK_RETRY_SCHEDULE", default_value = DEFAULT_RETRY_SCHEDULE)]
    pub webhook_retry_schedule: String,
}

/// The webhook settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Whether http:// targets are allowed.
    pub allow_http: bool,
    /// Whether loopback, link-local and private targets are allowed.
    pub allow_private: bool,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// The wait before each retry: `retry_schedule[n]` after the (n+1)th failed attempt.
    pub retry_schedule: Vec<Duration>,
}

impl WebhookSettings {
    /// The settings the flags give, or why they cannot work.
    pub fn from_args(args: &WebhookArgs) -> Result<Self, String> {
        if args.webhook_timeout == 0 {
            return Err("--webhook-timeout must be at least 1 second".into());
        }
        Ok(WebhookSettings {
            allow_http: args.webhook_allow_http,
            allow_private: args.webhook_allow_private,
            timeout: Duration::from_secs(args.webhook_timeout),
            retry_schedule: schedule(&args.webhook_retry_schedule)?,
        })
    }
}

/// `5s,5m,…` as durations; an empty text is no retries at all.
pub fn schedule(text: &str) -> Result<Vec<Duration>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let bad = || {
                format!(
                    "--webhook-retry-schedule: {item:?} is not a wait; write each as a number \
                     and a unit (ms, s, m, h, d), e.g. {DEFAULT_RETRY_SCHEDULE}"
                )
            };
            let split = item.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            let (n, unit) = item.split_at(split);
            let n: u64 = n.parse().map_err(|_| bad())?;
            let ms = match unit {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(bad()),
            };
            Ok(Duration::from_millis(n.checked_mul(ms).ok_or_else(bad)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_rides_out_days_of_a_receiver_being_down() {
        let s = schedule(DEFAULT_RETRY_SCHEDULE).unwrap();
        assert_eq!(s.len(), 9);
        assert_eq!(s[0], Duration::from_secs(5));
        let total: Duration = s.iter().sum();
        assert!(total > Duration::from_secs(3 * 86_400), "{total:?}");
    }

    #[test]
    fn a_schedule_is_waits_with_units_and_anything_else_is_refused_with_an_example() {
        assert_eq!(
            schedule("100ms, 2s,1m").unwrap(),
            vec![
                Duration::from_millis(100),
                Duration::from_secs(2),
                Duration::from_secs(60)
            ]
        );
        assert!(schedule("").unwrap().is_empty());
        for bad in ["5", "s", "5w", "-1s", "1.5s"] {
            let err = schedule(bad).unwrap_err();
            assert!(err.contains("e.g."), "{bad}: {err}");
        }
    }
}
