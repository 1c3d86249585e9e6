//! Skylight's state in PostgreSQL, for operators who run it beyond one machine.
//!
//! One database holds what the embedded stores hold on one machine: each tenant's node
//! state (see [`schema`]) and each tenant's lease ([`lease`]), which makes the node-host
//! holding it the only one that can write that state. [`connect`] opens a connection (over
//! verified TLS as the URL says, see [`config`]) and
//! [`schema::migrate`] brings the schema to this release's version before anything else
//! touches it.

pub mod config;
pub mod lease;
pub mod schema;
mod tls;

pub use config::{DbConfig, Roots, Tls, parse};

pub use tokio_postgres;

/// What went wrong with the database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL is not a PostgreSQL connection URL.
    #[error(
        "the database URL is not one PostgreSQL takes ({0}); it looks like postgres://user:password@host:5432/dbname"
    )]
    Url(String),
    /// The server could not be reached or refused us.
    #[error("cannot connect to PostgreSQL at {at}: {}{hint}", chain(.source))]
    Connect {
        /// Host, port and database (never the password).
        at: String,
        /// Why.
        source: tokio_postgres::Error,
        /// What to look at, when there is something to say.
        hint: &'static str,
    },
    /// TLS could not be set up.
    #[error("TLS to PostgreSQL: {0}")]
    Tls(String),
    /// The schema is not one this release can use.
    #[error("{0}")]
    Schema(String),
    /// A statement failed.
    #[error("PostgreSQL: {0}")]
    Db(#[from] tokio_postgres::Error),
}

/// An error with its causes, as tokio-postgres says only the outermost ("db error",
/// "error performing TLS handshake").
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Where `config` points, for messages: host, port and database, never the password.
pub fn describe(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("(default)");
    format!("{host}:{port}/{db}")
}

/// Connects, driving the connection on the current runtime until the client is dropped,
/// over TLS as `config` says (see [`config`]).
pub async fn connect(config: &DbConfig) -> Result<tokio_postgres::Client, Error> {
    use tokio_postgres::config::SslMode;
    let at = describe(&config.pg);
    // A database that stops answering is noticed in seconds, not at TCP's two hours, and
    // no statement waits on a lock for long: a node-host must be able to give its lease
    // up in time.
    let mut pg = config.pg.clone();
    pg.connect_timeout(std::time::Duration::from_secs(5))
        .keepalives(true)
        .keepalives_idle(std::time::Duration::from_secs(5))
        .tcp_user_timeout(std::time::Duration::from_secs(10))
        .options("-c lock_timeout=5000 -c statement_timeout=10000 -c idle_in_transaction_session_timeout=10000");
    let failed = |source: tokio_postgres::Error, hint| Error::Connect {
        at: at.clone(),
        source,
        hint,
    };
    let (roots, mode) = match &config.tls {
        Tls::Off => {
            pg.ssl_mode(SslMode::Disable);
            let (client, connection) = pg
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| failed(e, ""))?;
            drive(connection, at);
            return Ok(client);
        }
        Tls::IfOffered(roots) => (roots, SslMode::Prefer),
        Tls::Required(roots) => (roots, SslMode::Require),
    };
    pg.ssl_mode(mode);
    let (client, connection) = pg.connect(tls::connector(roots)?).await.map_err(|e| {
        let hint = if e.to_string().contains("TLS") {
            " (the server's certificate must chain to sslrootcert's CA, or the machine's \
             roots without it, and name the host the URL gives)"
        } else {
            ""
        };
        failed(e, hint)
    })?;
    drive(connection, at);
    Ok(client)
}

/// Runs the connection until its client is dropped.
fn drive<S, T>(connection: tokio_postgres::Connection<S, T>, at: String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio_postgres::tls::TlsStream + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(at = %at, error = %e, "the connection to PostgreSQL ended");
        }
    });
}
