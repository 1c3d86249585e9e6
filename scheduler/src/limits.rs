//! Limits that hold under abuse. The nobody identity is public by design (anyone may ask
//! for a challenge and register), so what one caller may ask of the scheduler is bounded:
//! calls per minute by caller (the nobody identity by its address, a device by its
//! certificate), tenants, running node-hosts, connections and streams, long-poll waits and
//! signer streams per tenant. Each refusal is RESOURCE_EXHAUSTED with what to do, and is
//! counted in the metrics (`skylight_refused_by_limit_total`).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

use crate::auth::Caller;
use crate::error::Error;

/// `scheduler run`'s limit flags.
#[derive(clap::Args, Debug, Clone)]
pub struct LimitArgs {
    /// Tenants this scheduler registers at most; Register is refused beyond.
    #[arg(long, env = "SKYLIGHT_MAX_TENANTS", default_value_t = 10_000)]
    pub max_tenants: u64,
    /// Node-hosts running at once at most; beyond, Schedule is refused until one stops
    /// (idle ones stop by themselves after --node-idle-timeout).
    #[arg(long, env = "SKYLIGHT_MAX_RUNNING_NODES", default_value_t = 100)]
    pub max_running_nodes: usize,
    /// Client connections open at once at most; one more is closed at once.
    #[arg(long, env = "SKYLIGHT_MAX_CONNECTIONS", default_value_t = 1_000)]
    pub max_connections: usize,
    /// Concurrent calls (HTTP/2 streams) on one connection at most.
    #[arg(
        long,
        env = "SKYLIGHT_MAX_STREAMS_PER_CONNECTION",
        default_value_t = 100
    )]
    pub max_streams_per_connection: u32,
    /// Seconds a `GetNodeInfo` with `wait` waits at most; then it answers with the node
    /// not running, and the caller asks again.
    #[arg(long, env = "SKYLIGHT_NODE_INFO_MAX_WAIT", default_value_t = 300)]
    pub node_info_max_wait: u64,
    /// Signers one tenant may attach to `SignerRequestsStream` at once.
    #[arg(
        long,
        env = "SKYLIGHT_MAX_SIGNER_STREAMS_PER_TENANT",
        default_value_t = 8
    )]
    pub max_signer_streams_per_tenant: usize,
    /// Calls a minute with the nobody identity (GetChallenge, Register, Recover), per
    /// address; a quarter of it may come at once. 0: no limit.
    #[arg(
        long,
        env = "SKYLIGHT_ANONYMOUS_CALLS_PER_MINUTE",
        default_value_t = 120
    )]
    pub anonymous_calls_per_minute: u32,
    /// Calls a minute by one device (Schedule, GetNodeInfo, GetChallenge, Register,
    /// Recover), per certificate; a quarter of it may come at once. 0: no limit.
    #[arg(long, env = "SKYLIGHT_DEVICE_CALLS_PER_MINUTE", default_value_t = 600)]
    pub device_calls_per_minute: u32,
}

/// The limits, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitSettings {
    /// Tenants at most.
    pub max_tenants: u64,
    /// Running node-hosts at most.
    pub max_running_nodes: usize,
    /// Open connections at most.
    pub max_connections: usize,
    /// Streams per connection at most.
    pub max_streams_per_connection: u32,
    /// The longest `GetNodeInfo` wait.
    pub node_info_max_wait: Duration,
    /// Signer streams per tenant at most.
    pub max_signer_streams_per_tenant: usize,
    /// Nobody-identity calls a minute per address (`None`: unlimited).
    pub anonymous_calls_per_minute: Option<NonZeroU32>,
    /// Device calls a minute per certificate (`None`: unlimited).
    pub device_calls_per_minute: Option<NonZeroU32>,
}

impl LimitSettings {
    /// The settings the flags give, or why they cannot work.
    pub fn from_args(a: &LimitArgs) -> Result<Self, String> {
        let at_least_one = |name: &str, v: u64| {
            if v == 0 {
                Err(format!(
                    "--{name} 0 would refuse everything; give at least 1"
                ))
            } else {
                Ok(())
            }
        };
        at_least_one("max-tenants", a.max_tenants)?;
        at_least_one("max-running-nodes", a.max_running_nodes as u64)?;
        at_least_one("max-connections", a.max_connections as u64)?;
        at_least_one(
            "max-streams-per-connection",
            u64::from(a.max_streams_per_connection),
        )?;
        at_least_one("node-info-max-wait", a.node_info_max_wait)?;
        at_least_one(
            "max-signer-streams-per-tenant",
            a.max_signer_streams_per_tenant as u64,
        )?;
        Ok(LimitSettings {
            max_tenants: a.max_tenants,
            max_running_nodes: a.max_running_nodes,
            max_connections: a.max_connections,
            max_streams_per_connection: a.max_streams_per_connection,
            node_info_max_wait: Duration::from_secs(a.node_info_max_wait),
            max_signer_streams_per_tenant: a.max_signer_streams_per_tenant,
            anonymous_calls_per_minute: NonZeroU32::new(a.anonymous_calls_per_minute),
            device_calls_per_minute: NonZeroU32::new(a.device_calls_per_minute),
        })
    }
}

/// Keys the call limiters keep before they forget the idle ones.
const MAX_KEYS: usize = 100_000;

/// The per-caller call budgets.
pub struct CallLimits {
    anonymous: Option<(NonZeroU32, DefaultKeyedRateLimiter<String>)>,
    device: Option<(NonZeroU32, DefaultKeyedRateLimiter<String>)>,
}

fn limiter(per_minute: NonZeroU32) -> (NonZeroU32, DefaultKeyedRateLimiter<String>) {
    let burst = NonZeroU32::new(per_minute.get() / 4).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::per_minute(per_minute).allow_burst(burst);
    (per_minute, RateLimiter::keyed(quota))
}

impl CallLimits {
    /// Budgets as `settings` say.
    pub fn new(settings: &LimitSettings) -> Self {
        CallLimits {
            anonymous: settings.anonymous_calls_per_minute.map(limiter),
            device: settings.device_calls_per_minute.map(limiter),
        }
    }

    /// The caller of `req`, once its call of `rpc` is taken from its budget (the nobody
    /// identity's by the connection's address).
    pub fn admit<T>(&self, rpc: &str, req: &tonic::Request<T>) -> Result<Caller, Error> {
        let caller = crate::auth::caller(req)?;
        self.take(rpc, &caller, req.remote_addr().map(|a| a.ip()))?;
        Ok(caller)
    }

    /// Takes one call of `rpc` by `caller`, from `addr`, from its budget.
    pub fn take(&self, rpc: &str, caller: &Caller, addr: Option<IpAddr>) -> Result<(), Error> {
        let (limits, key, who, limit) = match caller {
            Caller::Nobody => {
                let addr = addr.map(|a| a.to_string()).unwrap_or_default();
                let key = format!("nobody@{addr}");
                (&self.anonymous, key, "this address", "anonymous_calls")
            }
            other => (
                &self.device,
                other.describe(),
                "this device",
                "device_calls",
            ),
        };
        let Some((per_minute, limiter)) = limits else {
            return Ok(());
        };
        if limiter.len() > MAX_KEYS {
            limiter.retain_recent();
        }
        limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            crate::metrics::refused(limit);
            Error::ResourceExhausted(format!(
                "too many calls from {who} ({rpc} counts towards {per_minute} a minute); \
                 try again in {} s",
                wait.as_secs().max(1)
            ))
        })
    }
}

/// A client connection holding one of the places `--max-connections` gives; the place is
/// free again when the connection is dropped.
pub struct Counted<T> {
    io: T,
    _place: tokio::sync::OwnedSemaphorePermit,
}

impl<T> Counted<T> {
    /// `io`, if a place is free; `None` (and `io` dropped: the connection closes) if not.
    pub fn admit(io: T, places: &std::sync::Arc<tokio::sync::Semaphore>) -> Option<Self> {
        match places.clone().try_acquire_owned() {
            Ok(place) => Some(Counted { io, _place: place }),
            Err(_) => {
                crate::metrics::refused("connections");
                None
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<T: Connected> Connected for Counted<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(anonymous: u32, device: u32) -> LimitSettings {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            limits: LimitArgs,
        }
        let mut s = LimitSettings::from_args(&Only::parse_from(["x"]).limits).unwrap();
        s.anonymous_calls_per_minute = NonZeroU32::new(anonymous);
        s.device_calls_per_minute = NonZeroU32::new(device);
        s
    }

    #[test]
    fn the_nobody_identity_is_counted_by_address_and_devices_apart() {
        let l = CallLimits::new(&settings(8, 8));
        let here = Some(IpAddr::from([10, 0, 0, 1]));
        // A burst of a quarter of the minute's budget, then told to wait.
        for _ in 0..2 {
            l.take("Register", &Caller::Nobody, here).unwrap();
        }
        let e = l.take("Register", &Caller::Nobody, here).unwrap_err();
        assert!(
            matches!(&e, Error::ResourceExhausted(m) if m.contains("this address") && m.contains("try again in")),
            "{e:?}"
        );
        // Another address, and a device, have budgets of their own.
        l.take(
            "Register",
            &Caller::Nobody,
            Some(IpAddr::from([10, 0, 0, 2])),
        )
        .unwrap();
        let device = Caller::Device {
            node_id: [2; 33],
            device: "phone".into(),
        };
        l.take("Schedule", &device, here).unwrap();
    }

    #[test]
    fn zero_is_no_limit_and_other_zeros_are_refused() {
        let l = CallLimits::new(&settings(0, 0));
        for _ in 0..1_000 {
            l.take("GetChallenge", &Caller::Nobody, None).unwrap();
        }
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            limits: LimitArgs,
        }
        let args = Only::parse_from(["x", "--max-running-nodes", "0"]).limits;
        let e = LimitSettings::from_args(&args).unwrap_err();
        assert!(e.contains("--max-running-nodes 0"), "{e}");
    }
}
