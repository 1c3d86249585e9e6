use skylight_test_support::Postgres;

use crate::{connect, parse};

async fn ssl_in_use(url: &str) -> Result<bool, crate::Error> {
    let client = connect(&parse(url)?).await?;
    Ok(client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?
        .get(0))
}

#[tokio::test]
async fn a_server_verified_against_the_urls_ca_is_reached_over_tls() {
    let Some(pg) = Postgres::start_tls() else {
        return;
    };
    assert!(
        ssl_in_use(&pg.url()).await.unwrap(),
        "the session is encrypted"
    );
    // prefer (the default) takes the TLS offered, verified the same way.
    let prefer = pg.url().replace("sslmode=verify-full", "sslmode=prefer");
    assert!(ssl_in_use(&prefer).await.unwrap());
}

#[tokio::test]
async fn a_server_whose_certificate_chains_to_another_ca_is_refused_with_what_to_check() {
    let (Some(pg), Some(other)) = (Postgres::start_tls(), Postgres::start_tls()) else {
        return;
    };
    let other_ca = other.ca_file().unwrap().display().to_string();
    let wrong = pg
        .url()
        .replace(&pg.ca_file().unwrap().display().to_string(), &other_ca);
    for url in [
        wrong.clone(),
        wrong.replace("sslmode=verify-full", "sslmode=prefer"),
        // The machine's roots know nothing of the test's CA either.
        pg.url().split('?').next().unwrap().to_string() + "?sslmode=require",
    ] {
        let err = ssl_in_use(&url).await.expect_err("refused");
        let msg = err.to_string();
        assert!(msg.contains("certificate"), "{msg}");
        assert!(msg.contains("sslrootcert"), "says what to give: {msg}");
        let password = pg
            .url()
            .split(':')
            .nth(2)
            .unwrap()
            .split('@')
            .next()
            .unwrap()
            .to_string();
        assert!(!msg.contains(&password), "no password: {msg}");
    }
}

#[tokio::test]
async fn plaintext_is_what_sslmode_disable_asks_and_a_tls_only_server_refuses_it() {
    let Some(plain) = Postgres::start() else {
        return;
    };
    assert!(
        !ssl_in_use(&plain.url()).await.unwrap(),
        "no TLS offered: plaintext"
    );
    let Some(pg) = Postgres::start_tls() else {
        return;
    };
    let disabled = pg.url().split('?').next().unwrap().to_string() + "?sslmode=disable";
    let err = ssl_in_use(&disabled).await.expect_err("refused");
    assert!(
        err.to_string().contains("no encryption") || err.to_string().contains("pg_hba"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_ca_file_is_named() {
    let err = connect(
        &parse("postgres://u@127.0.0.1:1/d?sslmode=require&sslrootcert=/nonexistent/ca.pem")
            .unwrap(),
    )
    .await
    .expect_err("refused");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}
