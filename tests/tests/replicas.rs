//! Two scheduler processes on one PostgreSQL database, as replicas: each with its own data
//! directory, both on one chain, sharing the tenants, the CA and node state. What is not
//! built yet (a placement row, so that racing Schedules on two replicas start one
//! node-host) is not tested here.

use skylight_client::tls;
use skylight_proto::scheduler::ScheduleRequest;
use skylight_test_support::{ExternalChain, Postgres, Scheduler, register_new_tenant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_on_one_database_share_the_ca_and_tenants_and_either_serves_any_tenant() {
    let Some(pg) = Postgres::start() else { return };
    let chain = ExternalChain::start().unwrap();
    let files = tempfile::tempdir().unwrap();
    let url_file = pg.url_file(files.path());
    let (rpc, cookie) = (chain.url(), chain.cookie());
    let args = [
        "--bitcoind-rpc",
        rpc.as_str(),
        "--bitcoind-rpc-cookie",
        cookie.to_str().unwrap(),
        "--require-invite",
        "false",
        "--state-database-url-file",
        url_file.to_str().unwrap(),
        "--node-state-database-url-file",
        url_file.to_str().unwrap(),
    ];
    let a = Scheduler::start_on(&chain, &args, &[]).unwrap();
    let b = Scheduler::start_on(&chain, &args, &[]).unwrap();

    // One CA, made by the first and taken by the second from the database.
    let file = |s: &Scheduler, f: &str| std::fs::read(s.dir.join(f)).unwrap();
    assert_eq!(file(&a, "ca.pem"), file(&b, "ca.pem"));
    assert_eq!(file(&a, "users-ca.pem"), file(&b, "users-ca.pem"));
    assert!(
        !a.dir.join("scheduler.redb").exists(),
        "no embedded database"
    );

    // Registered on A, its device scheduled on B: B's node-host serves it.
    let first = register_new_tenant(&a.uri, &a.nobody()).await;
    let first_id = first.keys.node_id_bytes().to_vec();
    let mut on_b = tls::scheduler(&b.uri, &first.device).await.unwrap();
    let info = on_b
        .schedule(ScheduleRequest {
            node_id: first_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    // Its node-host takes the device's certificate, issued by A under the shared CA.
    skylight_client::node::connect_direct(&info.grpc_uri, &first.device)
        .await
        .unwrap();
    assert!(
        b.dir.join("nodes").join(hex::encode(&first_id)).exists(),
        "B started it"
    );

    // Registered on B with A's nobody identity (one CA), listed by A's operator command.
    let second = register_new_tenant(&b.uri, &a.nobody()).await;
    let second_hex = hex::encode(second.keys.node_id_bytes());
    let out = a.command(&["tenant", "list"]).unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains(&hex::encode(&first_id)) && listed.contains(&second_hex),
        "{listed}"
    );

    // Registering the first tenant again, on either, is refused.
    let again =
        skylight_client::identity::register(&b.uri, &a.nobody(), &first.keys, "regtest", None)
            .await
            .unwrap_err();
    assert!(
        format!("{again:#}").contains("already registered"),
        "{again:#}"
    );

    // A device revoked through A is refused by B within its refresh.
    let out = a
        .command(&[
            "tenant",
            "revoke-device",
            &hex::encode(&first_id),
            "default",
        ])
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mut c = tls::scheduler(&b.uri, &first.device).await.unwrap();
        let answer = c
            .schedule(ScheduleRequest {
                node_id: first_id.clone(),
            })
            .await;
        if answer.as_ref().err().map(|st| st.code()) == Some(tonic::Code::PermissionDenied) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "B still serves a device revoked through A: {answer:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // A data directory never changes where its state is.
    let out = std::process::Command::new(skylight_test_support::bin("scheduler"))
        .arg("--data-dir")
        .arg(&a.dir)
        .args(["run", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--state-database-url-file"), "{err}");
}
