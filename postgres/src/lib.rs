//! Skylight's state in PostgreSQL, for operators who run it beyond one machine.
//!
//! One database holds what the embedded stores hold on one machine: each tenant's node
//! state (see [`schema`]) and each tenant's lease ([`lease`]), which makes the node-host
//! holding it the only one that can write that state. [`connect`] opens a connection and
//! [`schema::migrate`] brings the schema to this release's version before anything else
//! touches it.

pub mod lease;
pub mod schema;

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
    #[error("cannot connect to PostgreSQL at {at}: {source}")]
    Connect {
        /// Host, port and database (never the password).
        at: String,
        /// Why.
        source: tokio_postgres::Error,
    },
    /// The schema is not one this release can use.
    #[error("{0}")]
    Schema(String),
    /// A statement failed.
    #[error("PostgreSQL: {0}")]
    Db(#[from] tokio_postgres::Error),
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

/// Parses a connection URL (or key=value string).
pub fn parse(url: &str) -> Result<tokio_postgres::Config, Error> {
    url.trim()
        .parse::<tokio_postgres::Config>()
        // The parser's message does not echo the URL, so no password reaches a log.
        .map_err(|e| Error::Url(e.to_string()))
}

/// Connects, driving the connection on the current runtime until the client is dropped.
///
/// Without TLS: this release reaches PostgreSQL on a trusted network only (loopback, a
/// private network, or a sidecar proxy that adds TLS); `sslmode=require` is refused rather
/// than quietly ignored.
pub async fn connect(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client, Error> {
    use tokio_postgres::config::SslMode;
    if !matches!(config.get_ssl_mode(), SslMode::Disable | SslMode::Prefer) {
        return Err(Error::Url(
            "sslmode=require is not supported yet: reach the database over a trusted network \
             or a TLS-adding proxy, and use sslmode=disable"
                .into(),
        ));
    }
    let at = describe(config);
    // A database that stops answering is noticed in seconds, not at TCP's two hours, and
    // no statement waits on a lock for long: a node-host must be able to give its lease
    // up in time.
    let mut config = config.clone();
    config
        .connect_timeout(std::time::Duration::from_secs(5))
        .keepalives(true)
        .keepalives_idle(std::time::Duration::from_secs(5))
        .tcp_user_timeout(std::time::Duration::from_secs(10))
        .options("-c lock_timeout=5000 -c statement_timeout=10000 -c idle_in_transaction_session_timeout=10000");
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|source| Error::Connect {
            at: at.clone(),
            source,
        })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(at = %at, error = %e, "the connection to PostgreSQL ended");
        }
    });
    Ok(client)
}
