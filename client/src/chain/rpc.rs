//! Where a bitcoind's JSON-RPC is and how to authenticate to it, as an operator gives it:
//! a URL (`http://user:password@host:port`), or a URL and a cookie file, or a URL and a user
//! with a password kept elsewhere (bitcoind's own three conventions).
//!
//! The password is never part of what is displayed or logged: [`ChainRpc`]'s `Display`
//! and `Debug` show the URL without it.

use std::fmt;
use std::path::PathBuf;

use bitcoin::Network;
use url::Url;

/// A chain's JSON-RPC endpoint and credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct ChainRpc {
    /// `http://host:port/path`, never with credentials in it.
    url: Url,
    /// How requests authenticate.
    pub auth: RpcAuth,
}

/// How requests to bitcoind authenticate (`Debug` hides the password).
#[derive(Clone, PartialEq, Eq)]
pub enum RpcAuth {
    /// No `Authorization` header (a proxy in front of bitcoind that adds it, say).
    None,
    /// `rpcuser` / `rpcpassword` (or an `rpcauth` entry).
    UserPassword {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// A file holding `user:password`: bitcoind's `.cookie`, which it rewrites at every
    /// start, so it is read again whenever a call fails.
    Cookie(PathBuf),
}

/// What is wrong with the settings, said so an operator can fix them.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct RpcSettingsError(String);

fn refuse(m: impl Into<String>) -> RpcSettingsError {
    RpcSettingsError(m.into())
}

/// bitcoind's default RPC port on `network`, used when the URL names none.
pub fn default_port(network: Network) -> u16 {
    match network {
        Network::Bitcoin => 8332,
        Network::Testnet => 18332,
        Network::Testnet4 => 48332,
        Network::Signet => 38332,
        _ => 18443,
    }
}

impl ChainRpc {
    /// Reads `url` (credentials in it, if any, become [`RpcAuth::UserPassword`]); a URL
    /// without a port gets bitcoind's default for `network`.
    pub fn parse(url: &str, network: Network) -> Result<Self, RpcSettingsError> {
        let mut parsed = Url::parse(url).map_err(|e| {
            refuse(format!(
                "the bitcoind RPC URL cannot be read ({e}): write it as http://host:port"
            ))
        })?;
        match parsed.scheme() {
            "http" => {}
            "https" => {
                return Err(refuse(
                    "bitcoind's RPC speaks plain HTTP only: use an http:// URL (over a private \
                     network or a tunnel you trust)",
                ));
            }
            other => {
                return Err(refuse(format!(
                    "the bitcoind RPC URL must be http://, not {other}://"
                )));
            }
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(refuse("the bitcoind RPC URL names no host"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(refuse(
                "the bitcoind RPC URL takes no query or fragment (a wallet path such as \
                 /wallet/name is fine)",
            ));
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| refuse("the credentials in the bitcoind RPC URL are not UTF-8"))
        };
        let auth = match (parsed.username(), parsed.password()) {
            ("", None) => RpcAuth::None,
            (user, Some(password)) => RpcAuth::UserPassword {
                user: decode(user)?,
                password: decode(password)?,
            },
            (_, None) => {
                return Err(refuse(
                    "the bitcoind RPC URL names a user but no password (user:password@host)",
                ));
            }
        };
        // The URL kept is the one without credentials: it is what node-hosts are given on
        // their command line and what logs show.
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        if parsed.port().is_none() {
            let _ = parsed.set_port(Some(default_port(network)));
        }
        Ok(ChainRpc { url: parsed, auth })
    }

    /// The settings an operator gave: `url`, and at most one of a cookie file or a user
    /// (whose password is `password`).
    pub fn from_settings(
        url: &str,
        network: Network,
        cookie: Option<PathBuf>,
        user: Option<String>,
        password: Option<String>,
    ) -> Result<Self, RpcSettingsError> {
        let mut rpc = Self::parse(url, network)?;
        let in_url = rpc.auth != RpcAuth::None;
        rpc.auth = match (cookie, user, password) {
            (None, None, None) => rpc.auth,
            _ if in_url => {
                return Err(refuse(
                    "credentials are given twice: in the bitcoind RPC URL and as a cookie or \
                     user; keep one",
                ));
            }
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(refuse(
                    "give either a cookie file or a user and password for bitcoind, not both",
                ));
            }
            (Some(cookie), None, None) => RpcAuth::Cookie(cookie),
            (None, Some(user), Some(password)) => RpcAuth::UserPassword { user, password },
            (None, Some(_), None) => {
                return Err(refuse(
                    "a bitcoind RPC user needs its password (from the environment or a file)",
                ));
            }
            (None, None, Some(_)) => {
                return Err(refuse("a bitcoind RPC password needs its user"));
            }
        };
        Ok(rpc)
    }

    /// An endpoint at `url` (which must carry no credentials) with `auth`.
    pub fn new(url: &str, network: Network, auth: RpcAuth) -> Result<Self, RpcSettingsError> {
        let mut rpc = Self::parse(url, network)?;
        if rpc.auth != RpcAuth::None {
            return Err(refuse(
                "credentials belong in the RPC settings, not the URL",
            ));
        }
        rpc.auth = auth;
        Ok(rpc)
    }

    /// The URL without credentials.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The host to connect to (an IPv6 address without its brackets).
    pub fn host(&self) -> String {
        match self.url.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => String::new(),
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.url.port().unwrap_or(80)
    }

    /// The request path (`/` or a wallet's `/wallet/<name>`).
    pub fn path(&self) -> &str {
        self.url.path()
    }
}

/// The URL without credentials, and how it authenticates (never the password).
impl fmt::Display for ChainRpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.auth {
            RpcAuth::None => write!(f, "{}", self.url),
            RpcAuth::UserPassword { user, .. } => {
                write!(f, "{} (user {user:?}, password hidden)", self.url)
            }
            RpcAuth::Cookie(path) => write!(f, "{} (cookie {})", self.url, path.display()),
        }
    }
}

impl fmt::Debug for RpcAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcAuth::None => f.write_str("None"),
            RpcAuth::UserPassword { user, .. } => write!(f, "UserPassword({user:?}, hidden)"),
            RpcAuth::Cookie(p) => write!(f, "Cookie({})", p.display()),
        }
    }
}

impl fmt::Debug for ChainRpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainRpc({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_url_are_taken_out_of_it_and_decoded() {
        let rpc =
            ChainRpc::parse("http://__cookie__:p%40ss@127.0.0.1:18555", Network::Regtest).unwrap();
        assert_eq!(rpc.url().as_str(), "http://127.0.0.1:18555/");
        assert_eq!(
            rpc.auth,
            RpcAuth::UserPassword {
                user: "__cookie__".into(),
                password: "p@ss".into()
            }
        );
        let shown = format!("{rpc} {rpc:?}");
        assert!(
            !shown.contains("p@ss") && !shown.contains("p%40ss"),
            "{shown}"
        );
        assert!(shown.contains("password hidden"), "{shown}");
    }

    #[test]
    fn host_names_ipv6_and_wallet_paths_are_kept_and_a_missing_port_is_the_networks() {
        let rpc = ChainRpc::parse("http://bitcoind.internal/wallet/w1", Network::Signet).unwrap();
        assert_eq!(rpc.host(), "bitcoind.internal");
        assert_eq!(rpc.port(), 38332);
        assert_eq!(rpc.path(), "/wallet/w1");
        let rpc = ChainRpc::parse("http://[::1]:8332", Network::Bitcoin).unwrap();
        assert_eq!(rpc.host(), "::1");
        assert_eq!(rpc.port(), 8332);
        assert_eq!(rpc.path(), "/");
    }

    #[test]
    fn what_bitcoind_cannot_serve_is_refused_with_the_fix() {
        for (url, says) in [
            ("https://h:8332", "plain HTTP"),
            ("ftp://h:8332", "must be http://"),
            ("127.0.0.1:8332", "cannot be read"),
            ("http://user@h:8332", "no password"),
            ("http://h:8332/?wallet=x", "no query"),
        ] {
            let err = ChainRpc::parse(url, Network::Regtest).unwrap_err().0;
            assert!(err.contains(says), "{url}: {err}");
        }
    }

    #[test]
    fn one_way_of_giving_credentials_is_taken_and_two_are_refused() {
        let n = Network::Regtest;
        let rpc = ChainRpc::from_settings("http://h:1", n, Some("/c/.cookie".into()), None, None)
            .unwrap();
        assert_eq!(rpc.auth, RpcAuth::Cookie("/c/.cookie".into()));
        let rpc =
            ChainRpc::from_settings("http://h:1", n, None, Some("u".into()), Some("pw".into()))
                .unwrap();
        assert_eq!(
            rpc.auth,
            RpcAuth::UserPassword {
                user: "u".into(),
                password: "pw".into()
            }
        );
        for (url, cookie, user, password, says) in [
            ("http://u:p@h:1", Some("/c"), None, None, "given twice"),
            ("http://h:1", Some("/c"), Some("u"), None, "not both"),
            ("http://h:1", None, Some("u"), None, "needs its password"),
            ("http://h:1", None, None, Some("p"), "needs its user"),
        ] {
            let err = ChainRpc::from_settings(
                url,
                n,
                cookie.map(PathBuf::from),
                user.map(String::from),
                password.map(String::from),
            )
            .unwrap_err()
            .0;
            assert!(err.contains(says), "{err}");
        }
    }
}
