//! `scheduler config show`: the settings `scheduler run` would use, each with where it came
//! from, as TOML a configuration file could hold (secrets redacted).

use std::fmt::Write;
use std::time::Duration;

use super::file::{Kind, Setting, Source};

/// The text `scheduler config show` prints.
pub fn render(file: Option<&std::path::Path>, settings: &[Setting], password_set: bool) -> String {
    let mut out = String::new();
    match file {
        Some(f) => writeln!(out, "# settings of `scheduler run`, with {}", f.display()),
        None => writeln!(out, "# settings of `scheduler run` (no configuration file)"),
    }
    .expect("a String takes writes");
    let node_defaults = node_host_defaults();
    for s in settings {
        let line = match (&s.source, s.values.is_empty()) {
            (Source::Unset, _) | (_, true) => {
                let why = match node_defaults.iter().find(|(k, _)| *k == s.key) {
                    Some((_, v)) => format!("not set: node-host's default, {v}"),
                    None => "not set".to_string(),
                };
                format!("# {} ({why})", s.key)
            }
            (source, false) => {
                let from = match source {
                    Source::CommandLine => "command line".to_string(),
                    Source::Environment(var) => var.clone(),
                    Source::File => "file".to_string(),
                    Source::Default => "default".to_string(),
                    Source::Unset => unreachable!("handled above"),
                };
                format!("{} = {}  # {from}", s.key, value(s))
            }
        };
        writeln!(out, "{line}").expect("a String takes writes");
    }
    if password_set {
        writeln!(
            out,
            "# bitcoind RPC password: set in {} (not shown)",
            super::PASSWORD_ENV
        )
        .expect("a String takes writes");
    }
    out
}

/// A setting's value as TOML, a password in a URL replaced.
fn value(s: &Setting) -> String {
    let one = |text: &str| {
        let text = redacted(&s.key, text);
        if text.parse::<i64>().is_ok() || text == "true" || text == "false" {
            text
        } else {
            toml::Value::String(text).to_string()
        }
    };
    match s.kind {
        Kind::Switch => s.values.last().cloned().unwrap_or_else(|| "false".into()),
        Kind::List => format!(
            "[{}]",
            s.values
                .iter()
                .map(|v| one(v))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Kind::One => one(s.values.last().expect("checked non-empty")),
    }
}

/// The bitcoind URL may carry a user's password; nothing else shown is secret.
fn redacted(key: &str, text: &str) -> String {
    if key != "bitcoind-rpc" {
        return text.to_string();
    }
    match url::Url::parse(text) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        _ => text.to_string(),
    }
}

/// What node-host uses where the operator set nothing, by the scheduler's key (node-host's
/// defaults are written once, in its own `Config`).
fn node_host_defaults() -> Vec<(&'static str, String)> {
    // Any node id: the defaults do not depend on it (this one is the curve's generator).
    let key: bitcoin::secp256k1::PublicKey =
        "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
            .parse()
            .expect("a public key");
    let c = skylight_node_host::config::Config::new(key, "/".into(), "http://localhost".into());
    let secs = |d: Duration| d.as_secs().to_string();
    let ms = |d: Duration| d.as_millis().to_string();
    vec![
        ("node-idle-timeout", secs(c.idle_timeout)),
        ("node-signer-wait", secs(c.signer_wait)),
        ("node-signer-deadline", secs(c.signer_deadline)),
        ("node-chain-poll-ms", ms(c.chain_poll)),
        ("node-signed-request-window", secs(c.signed_request_window)),
        ("node-signer-needed-after-ms", ms(c.signer_needed_after)),
        ("node-stuck-after-blocks", c.stuck_after_blocks.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(key: &str, values: &[&str], source: Source, kind: Kind) -> Setting {
        Setting {
            key: key.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
            source,
            kind,
        }
    }

    #[test]
    fn settings_show_as_toml_with_their_source_and_no_password() {
        let text = render(
            None,
            &[
                setting("listen", &["0.0.0.0:1"], Source::File, Kind::One),
                setting("invites-per-tenant", &["0"], Source::Default, Kind::One),
                setting(
                    "hostname",
                    &["a", "b"],
                    Source::Environment("SKYLIGHT_HOSTNAMES".into()),
                    Kind::List,
                ),
                setting(
                    "bitcoind-rpc",
                    &["http://u:hunter2@h:1"],
                    Source::CommandLine,
                    Kind::One,
                ),
                setting(
                    "webhook-allow-http",
                    &["false"],
                    Source::Default,
                    Kind::Switch,
                ),
                setting("node-idle-timeout", &[], Source::Unset, Kind::One),
            ],
            true,
        );
        assert!(text.contains("listen = \"0.0.0.0:1\"  # file"), "{text}");
        assert!(text.contains("invites-per-tenant = 0  # default"), "{text}");
        assert!(
            text.contains("hostname = [\"a\", \"b\"]  # SKYLIGHT_HOSTNAMES"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("http://u:redacted@h:1/"), "{text}");
        assert!(
            text.contains("webhook-allow-http = false  # default"),
            "{text}"
        );
        assert!(
            text.contains("# node-idle-timeout (not set: node-host's default, "),
            "{text}"
        );
        assert!(text.contains("SKYLIGHT_BITCOIND_RPC_PASSWORD (not shown)"));
    }
}
