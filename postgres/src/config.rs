//! The database URL as operators write it: PostgreSQL's own (a `postgres://` URL or
//! `key=value` words), with libpq's TLS settings, which tokio-postgres does not all take.
//!
//! `sslmode`: `disable` (plaintext), `allow` or `prefer` (the default: TLS when the server
//! offers it), `require`, `verify-ca` or `verify-full` (TLS or nothing). Whenever TLS is
//! used the server's certificate is verified, name included: libpq's `require` skips
//! that, which would let anyone on the path read and write channel state.
//! `sslrootcert`: the PEM file of the CA(s) to trust, or `system` (the default) for the
//! machine's roots.

use std::path::PathBuf;

use crate::Error;

/// Whether and how the connection is encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Plaintext (`sslmode=disable`): a trusted network only.
    Off,
    /// TLS when the server offers it, verified; plaintext when it offers none.
    IfOffered(Roots),
    /// TLS, verified, or no connection.
    Required(Roots),
}

/// Whom the server's certificate must chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// The machine's trusted roots.
    System,
    /// The CA certificates in this PEM file.
    File(PathBuf),
}

/// A parsed database URL.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// Everything but TLS, as tokio-postgres takes it.
    pub pg: tokio_postgres::Config,
    /// TLS.
    pub tls: Tls,
    /// The URL (or words) without the TLS settings, to write them anew (see
    /// [`DbConfig::with_root_file`]).
    rest: String,
    url_form: bool,
}

const SSLMODE: &str = "sslmode";
const SSLROOTCERT: &str = "sslrootcert";

/// Parses a connection URL (or key=value words). The parser's messages never echo the URL,
/// so no password reaches a log.
pub fn parse(url: &str) -> Result<DbConfig, Error> {
    let url = url.trim();
    let url_form = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let (rest, mode, root) = if url_form {
        split_url(url)?
    } else {
        split_words(url)
    };
    let roots = match root.as_deref() {
        None | Some("system") => Roots::System,
        Some("") => return Err(Error::Url("sslrootcert is empty".into())),
        Some(path) => Roots::File(PathBuf::from(path)),
    };
    let tls = match mode.as_deref() {
        Some("disable") => Tls::Off,
        None | Some("allow" | "prefer") => Tls::IfOffered(roots),
        Some("require" | "verify-ca" | "verify-full") => Tls::Required(roots),
        Some(other) => {
            return Err(Error::Url(format!(
                "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
            )));
        }
    };
    let pg = rest
        .parse::<tokio_postgres::Config>()
        .map_err(|e| Error::Url(e.to_string()))?;
    Ok(DbConfig {
        pg,
        tls,
        rest,
        url_form,
    })
}

impl DbConfig {
    /// The URL again, with `sslrootcert` pointing at `file` (where a copy of the CA file is
    /// for a node-host that cannot read the operator's), the rest as written.
    pub fn with_root_file(&self, file: &std::path::Path) -> String {
        let mode = match self.tls {
            Tls::Off => "disable",
            Tls::IfOffered(_) => "prefer",
            Tls::Required(_) => "verify-full",
        };
        let root = file.display().to_string();
        if self.url_form {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query
                .append_pair(SSLMODE, mode)
                .append_pair(SSLROOTCERT, &root);
            let sep = if self.rest.contains('?') { '&' } else { '?' };
            format!("{}{sep}{}", self.rest, query.finish())
        } else {
            let quoted = root.replace('\\', "\\\\").replace('\'', "\\'");
            format!("{} {SSLMODE}={mode} {SSLROOTCERT}='{quoted}'", self.rest)
        }
    }

    /// The CA file the URL names, if any.
    pub fn root_file(&self) -> Option<&std::path::Path> {
        match &self.tls {
            Tls::IfOffered(Roots::File(f)) | Tls::Required(Roots::File(f)) => Some(f),
            _ => None,
        }
    }
}

type Split = (String, Option<String>, Option<String>);

/// `postgres://…?a=b&sslmode=…`: the TLS parameters out of the query.
fn split_url(url: &str) -> Result<Split, Error> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None, None));
    };
    let (mut mode, mut root, mut kept) = (None, None, Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let value = || {
            url::form_urlencoded::parse(format!("v={v}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        match k {
            SSLMODE => mode = Some(value()),
            SSLROOTCERT => root = Some(value()),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, mode, root))
}

/// `host=… sslmode=…`: the TLS words out (values may be quoted, as libpq allows).
fn split_words(words: &str) -> Split {
    let (mut mode, mut root, mut kept) = (None, None, Vec::new());
    for word in tokens(words) {
        let (k, v) = word.split_once('=').unwrap_or((word, ""));
        match k.trim() {
            SSLMODE => mode = Some(unquote(v.trim())),
            SSLROOTCERT => root = Some(unquote(v.trim())),
            _ => kept.push(word),
        }
    }
    (kept.join(" "), mode, root)
}

/// The words of `s`: split at whitespace outside single quotes (a backslash escapes).
fn tokens(s: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted, mut escaped) = (Vec::new(), None, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '\'' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if let Some(b) = start.take() {
                    out.push(&s[b..i]);
                }
                continue;
            }
            _ => {}
        }
        start.get_or_insert(i);
    }
    if let Some(b) = start {
        out.push(&s[b..]);
    }
    out
}

fn unquote(v: &str) -> String {
    let inner = v
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .unwrap_or(v);
    let (mut out, mut escaped) = (String::new(), false);
    for c in inner.chars() {
        if c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_come_out_of_a_url_and_the_rest_parses_as_written() {
        let c = parse("postgres://u:p%40ss@db.example:6432/sky?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fsky%2Fca.pem").unwrap();
        assert_eq!(c.tls, Tls::Required(Roots::File("/etc/sky/ca.pem".into())));
        assert_eq!(c.pg.get_dbname(), Some("sky"));
        assert_eq!(c.pg.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(c.pg.get_application_name(), Some("x"));
        let again = parse(&c.with_root_file(std::path::Path::new("/node/db ca.pem"))).unwrap();
        assert_eq!(
            again.tls,
            Tls::Required(Roots::File("/node/db ca.pem".into()))
        );
        assert_eq!(again.pg.get_password(), Some(&b"p@ss"[..]));
    }

    #[test]
    fn each_sslmode_means_what_it_says_and_the_default_is_tls_when_offered() {
        let mode = |m: &str| parse(&format!("postgres://u@h/d?sslmode={m}")).unwrap().tls;
        assert_eq!(mode("disable"), Tls::Off);
        assert_eq!(mode("prefer"), Tls::IfOffered(Roots::System));
        assert_eq!(mode("require"), Tls::Required(Roots::System));
        assert_eq!(mode("verify-ca"), Tls::Required(Roots::System));
        assert_eq!(
            parse("postgres://u@h/d").unwrap().tls,
            Tls::IfOffered(Roots::System)
        );
        let err = parse("postgres://u:secret@h/d?sslmode=sometimes").unwrap_err();
        assert!(
            err.to_string().contains("sslmode=sometimes is not one of"),
            "{err}"
        );
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn key_value_words_with_quoted_paths_work_too() {
        let c =
            parse(r"host=db user=u password='a b\'c' sslmode=require sslrootcert='/etc/my ca.pem'")
                .unwrap();
        assert_eq!(c.tls, Tls::Required(Roots::File("/etc/my ca.pem".into())));
        assert_eq!(c.pg.get_password(), Some(&b"a b'c"[..]));
        let again = parse(&c.with_root_file(std::path::Path::new("/n/it's.pem"))).unwrap();
        assert_eq!(again.tls, Tls::Required(Roots::File("/n/it's.pem".into())));
        assert_eq!(again.pg.get_password(), Some(&b"a b'c"[..]));
    }
}
