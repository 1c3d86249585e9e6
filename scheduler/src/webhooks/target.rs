//! Which webhook targets are allowed. The scheduler runs inside the operator's network, so a
//! tenant's webhook must not become a way into it: unless the operator allows them, targets
//! on loopback, link-local, private or otherwise non-public addresses are refused, both
//! when the webhook is added and on every connection (the resolver below filters what DNS
//! answers then, so a name that later resolves inward gets nowhere).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use url::{Host, Url};

use super::settings::WebhookSettings;
use crate::error::Error;

/// The longest webhook URL taken.
const MAX_URI: usize = 2048;

/// What kind of address an IP is, when it is not a public one.
fn inward(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => inward_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return inward_v4(v4);
            }
            let s = v6.segments();
            let v4_in = |hi: u16, lo: u16| {
                Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
            };
            if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
                // IPv4-compatible (`::a.b.c.d`, deprecated): the IPv4 address decides.
                return inward_v4(v4_in(s[6], s[7]));
            }
            if s[0] == 0x2002 {
                // 6to4: the IPv4 address it carries decides.
                return inward_v4(v4_in(s[1], s[2]));
            }
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if s[0] & 0xffc0 == 0xfec0 {
                Some("site-local")
            } else if s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001 {
                Some("local-use NAT64")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if s[0] == 0x2001 && s[1] == 0x0db8 {
                Some("documentation")
            } else if s[0] == 0x0064 && s[1] == 0xff9b {
                // NAT64: the IPv4 address it carries decides.
                inward_v4(v4_in(s[6], s[7]))
            } else {
                None
            }
        }
    }
}

fn inward_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("broadcast, multicast or reserved")
    } else if ip.is_documentation() || (a == 198 && (b == 18 || b == 19)) {
        Some("documentation or benchmarking")
    } else if a == 192 && b == 0 && c == 0 {
        Some("protocol assignment")
    } else {
        None
    }
}

/// Whether `ip` is a public address a webhook may reach without the operator's leave.
pub fn is_public(ip: IpAddr) -> bool {
    inward(ip).is_none()
}

fn refused_inward(host: &str, ip: IpAddr, kind: &str) -> Error {
    Error::InvalidArgument(format!(
        "the webhook target {host} is {ip}, a {kind} address: webhooks may not reach into \
         the network the scheduler runs in. An operator whose receivers are there allows \
         such targets with --webhook-allow-private (SKYLIGHT_WEBHOOK_ALLOW_PRIVATE=true)"
    ))
}

/// Checks a webhook URL's form against the operator's settings: http(s), a host, no
/// credentials, not too long. Returns it parsed.
pub fn parse(uri: &str, settings: &WebhookSettings) -> Result<Url, Error> {
    let bad = |why: &str| Error::InvalidArgument(format!("webhook URL {uri:?}: {why}"));
    if uri.len() > MAX_URI {
        return Err(bad(&format!("longer than {MAX_URI} bytes")));
    }
    let url = Url::parse(uri.trim()).map_err(|e| bad(&e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if settings.allow_http => {}
        "http" => {
            return Err(bad(
                "webhooks must use https://; an operator whose receivers are on a private \
                 network allows plain http with --webhook-allow-http \
                 (SKYLIGHT_WEBHOOK_ALLOW_HTTP=true)",
            ));
        }
        other => return Err(bad(&format!("{other}:// is not http(s)"))),
    }
    if url.host().is_none() {
        return Err(bad("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "credentials in the URL are not taken (they would be shown by \
             ListOutgoingWebhooks); verify deliveries by their signature instead",
        ));
    }
    if let Some(Host::Ipv4(_) | Host::Ipv6(_)) = url.host()
        && !settings.allow_private
    {
        check_ip(&url)?;
    }
    Ok(url)
}

/// Refuses an IP-literal target that is not public (names are checked by resolving).
fn check_ip(url: &Url) -> Result<(), Error> {
    let ip = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    match inward(ip) {
        Some(kind) => Err(refused_inward(&ip.to_string(), ip, kind)),
        None => Ok(()),
    }
}

/// Resolves the target now and refuses it if any address it has is not public (unless
/// allowed), so the tenant learns at once rather than from deliveries that never arrive.
pub async fn check_reachable(url: &Url, settings: &WebhookSettings) -> Result<(), Error> {
    if settings.allow_private {
        return Ok(());
    }
    let Some(Host::Domain(name)) = url.host() else {
        return check_ip(url);
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
        .await
        .map_err(|e| {
            Error::InvalidArgument(format!(
                "the webhook target {name} does not resolve ({e}); check the URL"
            ))
        })?
        .collect();
    for addr in &addrs {
        if let Some(kind) = inward(addr.ip()) {
            return Err(refused_inward(name, addr.ip(), kind));
        }
    }
    if addrs.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "the webhook target {name} has no address; check the URL"
        )));
    }
    Ok(())
}

/// Whether a delivery to `url` may go, for a target given as an IP (the resolver does not
/// see those).
pub fn may_send(url: &Url, settings: &WebhookSettings) -> Result<(), String> {
    if settings.allow_private {
        return Ok(());
    }
    check_ip(url).map_err(|e| e.to_string())
}

/// A resolver for the delivery client that drops every address that is not public: the
/// connection goes only where the check passed, whatever DNS says by then.
pub struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> =
                all.iter().copied().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                let first = all.first().map(|a| a.ip().to_string()).unwrap_or_default();
                return Err(format!(
                    "{host} resolves only to addresses that are not public ({first}); \
                     --webhook-allow-private would allow them"
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(allow_http: bool, allow_private: bool) -> WebhookSettings {
        WebhookSettings {
            allow_http,
            allow_private,
            timeout: std::time::Duration::from_secs(1),
            retry_schedule: vec![],
        }
    }

    #[test]
    fn addresses_inside_an_operators_network_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "::7f00:1",
            "fec0::1",
            "64:ff9b:1::1",
            "2002:a00:1::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn a_webhook_url_must_be_https_with_a_host_and_no_credentials() {
        let strict = settings(false, false);
        assert!(parse("https://hooks.example.com/x?y=1", &strict).is_ok());
        let err = parse("http://hooks.example.com", &strict)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--webhook-allow-http"), "{err}");
        assert!(parse("http://hooks.example.com", &settings(true, false)).is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "not a url",
            "https://u:p@hooks.example.com",
        ] {
            assert!(parse(bad, &strict).is_err(), "{bad}");
        }
        let long = format!("https://x.example/{}", "a".repeat(MAX_URI));
        assert!(parse(&long, &strict).is_err());
    }

    #[test]
    fn an_inward_ip_target_is_refused_with_how_to_allow_it() {
        let strict = settings(true, false);
        for target in [
            "http://127.0.0.1:8080/",
            "http://[::1]/",
            "http://169.254.169.254/",
        ] {
            let err = parse(target, &strict).unwrap_err().to_string();
            assert!(err.contains("--webhook-allow-private"), "{target}: {err}");
        }
        assert!(parse("http://127.0.0.1:8080/", &settings(true, true)).is_ok());
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_unless_allowed() {
        let strict = settings(true, false);
        let url = parse("http://localhost:9/", &strict).unwrap();
        let err = check_reachable(&url, &strict)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("loopback"), "{err}");
        assert!(err.contains("--webhook-allow-private"), "{err}");
        assert!(check_reachable(&url, &settings(true, true)).await.is_ok());
    }
}
