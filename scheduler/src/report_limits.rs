//! Bounds on signer rejection reports. Anyone holding the public nobody identity may send
//! them (Greenlight's signer does), so each reporter and each tenant named gets a budget,
//! and a report naming a tenant that did not come from one of its devices is counted
//! apart from the tenant's own: strangers cannot use up a tenant's budget, nor fill its
//! record with theirs.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Reports a minute, and at once, per reporter: a device, or the nobody identity from one
/// address.
const PER_REPORTER: (u32, u32) = (60, 20);
/// Reports a minute, and at once, per tenant named (its devices' and strangers' apart).
const PER_TENANT: (u32, u32) = (120, 40);
/// Keys kept before the limiters forget the idle ones.
const MAX_KEYS: usize = 10_000;

/// The report limits.
pub struct ReportLimits {
    reporters: DefaultKeyedRateLimiter<String>,
    tenants: DefaultKeyedRateLimiter<String>,
}

impl Default for ReportLimits {
    fn default() -> Self {
        ReportLimits {
            reporters: RateLimiter::keyed(quota(PER_REPORTER)),
            tenants: RateLimiter::keyed(quota(PER_TENANT)),
        }
    }
}

fn quota((per_minute, burst): (u32, u32)) -> Quota {
    let n = |v: u32| NonZeroU32::new(v).expect("a non-zero constant");
    Quota::per_minute(n(per_minute)).allow_burst(n(burst))
}

/// Who sent a report, as the limits count it.
pub struct Reporter<'a> {
    /// The caller as the scheduler names it (`nobody`, or a device's subject).
    pub caller: &'a str,
    /// Its address, telling apart the many signers that share the nobody identity.
    pub addr: Option<IpAddr>,
    /// Whether the caller is a device of the tenant the report names.
    pub tenant_device: bool,
}

impl ReportLimits {
    /// Takes one report by `who` about `node_id` (hex, may be empty) from the budgets;
    /// `Err` says which budget is spent.
    pub fn take(&self, who: &Reporter<'_>, node_id: &str) -> Result<(), &'static str> {
        self.forget_idle();
        let reporter = match who.addr {
            Some(a) if !who.tenant_device => format!("{}@{a}", who.caller),
            _ => who.caller.to_string(),
        };
        self.reporters
            .check_key(&reporter)
            .map_err(|_| "too many reports from this reporter; try again in a minute")?;
        if !node_id.is_empty() {
            let side = if who.tenant_device { "own" } else { "others" };
            self.tenants
                .check_key(&format!("{node_id}/{side}"))
                .map_err(|_| "too many reports about this node; try again in a minute")?;
        }
        Ok(())
    }

    fn forget_idle(&self) {
        for l in [&self.reporters, &self.tenants] {
            if l.len() > MAX_KEYS {
                l.retain_recent();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Reporter<'static> {
        Reporter {
            caller: "/users/02aa/default",
            addr: None,
            tenant_device: true,
        }
    }

    fn stranger(last: u8) -> Reporter<'static> {
        Reporter {
            caller: "nobody",
            addr: Some(IpAddr::from([10, 0, 0, last])),
            tenant_device: false,
        }
    }

    #[test]
    fn a_reporter_gets_a_burst_then_is_told_to_wait() {
        let l = ReportLimits::default();
        for _ in 0..PER_REPORTER.1 {
            l.take(&device(), "02aa").unwrap();
        }
        let e = l.take(&device(), "02aa").unwrap_err();
        assert!(e.contains("reporter"), "{e}");
    }

    #[test]
    fn strangers_naming_a_tenant_use_up_their_own_budget_not_the_tenants() {
        let l = ReportLimits::default();
        // Many addresses with the nobody identity: each within its own budget, together
        // past the tenant's, and the tenant's devices are still heard.
        let mut refused = 0;
        for i in 0..PER_TENANT.1 + 5 {
            if l.take(&stranger(i as u8), "02aa").is_err() {
                refused += 1;
            }
        }
        assert_eq!(refused, 5, "strangers share one budget for the tenant");
        l.take(&device(), "02aa").unwrap();
    }
}
