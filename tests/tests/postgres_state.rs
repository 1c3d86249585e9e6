//! Node state in PostgreSQL, through the real binaries: a scheduler whose node-hosts keep
//! LDK's state (channels, the manager, the wallet) in a real PostgreSQL server started
//! here, each under its tenant's lease.

use std::process::Command;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use skylight_test_support::pair::{Pair, invoice, paid};
use skylight_test_support::{Postgres, Scheduler, alive, eventually, node_pid};

fn kill(signal: &str, pid: u32) {
    Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
}

#[test]
fn channels_kept_in_postgres_over_tls_pay_survive_a_restart_and_run_from_the_database_alone_in_a_new_directory()
 {
    // Over TLS only, the server checked against a CA file outside every node directory.
    let Some(pg) = Postgres::start_tls() else {
        return;
    };
    let files = tempfile::tempdir().unwrap();
    let url_file = pg.url_file(files.path());
    let pair =
        Pair::connected_with(&["--node-state-database-url-file", url_file.to_str().unwrap()]);
    pair.fund_channel();
    pair.confirm_channel();
    let (s, a, b) = (&pair.s, &pair.a, &pair.b);
    let first = invoice(b, 1_000_000, "in-postgres");
    a.call(&["pay", &first]);
    eventually("B sees the payment", || paid(b, "in-postgres"));

    let a_id = a.cli.node_id();
    let monitors = pg.query(&format!(
        "SELECT count(*) FROM node_kv WHERE node_id = '\\x{a_id}'::bytea AND primary_ns = 'monitors'"
    ));
    assert_eq!(monitors, [["1"]], "A's channel monitor is in the database");
    let dir = s.node_dir(&a_id);
    assert!(
        !dir.ldk_store().exists(),
        "A's LDK state is not on local disk"
    );
    assert!(dir.state_in_database().exists());
    let url_copy = std::fs::metadata(dir.state_database_url()).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&url_copy.permissions()) & 0o777,
        0o600,
        "the database URL holds a password: owner-only"
    );
    assert_eq!(
        std::fs::read(dir.state_database_ca()).unwrap(),
        std::fs::read(pg.ca_file().unwrap()).unwrap(),
        "the URL's CA file is copied for the confined node-host"
    );
    let sessions = pg.query(
        "SELECT count(*), bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.usename = 'skylight' AND a.pid <> pg_backend_pid()",
    );
    let held: u32 = sessions[0][0].parse().unwrap();
    assert!(
        held >= 2 && sessions[0][1] == "t",
        "both node-hosts hold sessions with the database, each encrypted: {sessions:?}"
    );
    let holds_url = skylight_test_support::command_lines_holding(&pg.url());
    assert!(
        holds_url.is_empty(),
        "the URL is on a command line: {holds_url:?}"
    );

    // Stopped and started again, A reads its channel back from the database and pays.
    let pid = node_pid(s, &a_id).unwrap();
    kill("-TERM", pid);
    eventually("A's node-host stops", || !alive(pid));
    let lease = pg.query(&format!(
        "SELECT expires_at <= now() FROM node_lease WHERE node_id = '\\x{a_id}'::bytea"
    ));
    assert_eq!(lease, [["t"]], "a clean stop gives the lease up");
    eventually("A's channel is back and connected", || {
        a.try_call(&["listpeerchannels"]).is_some_and(|c| {
            c["channels"][0]["peer_connected"] == true
                && c["channels"][0]["state"] == "ChanneldNormal"
        })
    });
    let epoch = pg.query(&format!(
        "SELECT epoch FROM node_lease WHERE node_id = '\\x{a_id}'::bytea"
    ));
    assert_eq!(epoch, [["2"]], "the second start took the lease over");
    let again = invoice(b, 1_000_000, "after-restart");
    a.call(&["pay", &again]);
    eventually("B sees the payment after A's restart", || {
        paid(b, "after-restart")
    });

    // As if A's next start were on another machine: its node directory is gone, and
    // what the scheduler writes there at a start (certificates, the database's URL) is all
    // it has. Its channel, payments and invoices come from the database alone.
    let pid = node_pid(s, &a_id).unwrap();
    kill("-TERM", pid);
    eventually("A's node-host stops", || !alive(pid));
    std::fs::remove_dir_all(dir.root()).unwrap();
    eventually("A's channel is back, from the database alone", || {
        a.try_call(&["listpeerchannels"]).is_some_and(|c| {
            c["channels"][0]["peer_connected"] == true
                && c["channels"][0]["state"] == "ChanneldNormal"
        })
    });
    assert!(!dir.ldk_store().exists(), "nothing was made locally");
    let third = invoice(b, 1_000_000, "from-the-database");
    a.call(&["pay", &third]);
    eventually("B sees the payment from A's new directory", || {
        paid(b, "from-the-database")
    });
    assert_eq!(
        a.call(&["listpays"])["pays"].as_array().unwrap().len(),
        3,
        "A's payments came along"
    );
}

#[test]
fn a_stale_node_host_whose_lease_was_taken_over_writes_nothing_and_stops_when_it_resumes() {
    let Some(pg) = Postgres::start() else { return };
    let files = tempfile::tempdir().unwrap();
    let url_file = pg.url_file(files.path());
    let s = Scheduler::start_logged(
        &[
            "--node-state-database-url-file",
            url_file.to_str().unwrap(),
            "--node-lease-ttl",
            "3",
        ],
        &[],
    )
    .unwrap();
    let t = skylight_test_support::pair::Tenant::new(&s);
    let id = t.cli.node_id();
    let stale = node_pid(&s, &id).unwrap();
    t.stop_signer();

    // Stalled (a long GC pause, a frozen VM): it cannot renew its lease.
    kill("-STOP", stale);
    // What it had sent before it stopped has reached the database by now.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let rows = |pg: &Postgres| {
        pg.query(&format!(
            "SELECT primary_ns, secondary_ns, key, md5(value), xmin::text FROM node_kv \
             WHERE node_id = '\\x{id}'::bytea ORDER BY 1, 2, 3"
        ))
    };
    let before = rows(&pg);
    assert!(!before.is_empty(), "the node's state is in the database");

    // Its successor, "on another machine": another directory with only its certificates
    // and the database's URL, the same command line otherwise. It takes the lease once the
    // stalled one's runs out.
    let other = tempfile::tempdir().unwrap();
    let dir = s.node_dir(&id);
    let next = skylight_node_host::paths::NodeDir::new(other.path());
    for (from, to) in [
        (dir.server_cert(), next.server_cert()),
        (dir.server_key(), next.server_key()),
        (dir.tenant_ca(), next.tenant_ca()),
        (dir.state_database_url(), next.state_database_url()),
    ] {
        std::fs::copy(from, to).unwrap();
    }
    let mut args = successor_args(stale, other.path(), &next.state_database_url());
    // The plaintext health port a cluster's readiness probe asks.
    let health_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    args.extend(["--health-listen".into(), format!("127.0.0.1:{health_port}")]);
    let mut successor = Command::new(skylight_test_support::bin("node-host"))
        .args(&args)
        .stderr(std::fs::File::create(other.path().join("log")).unwrap())
        .spawn()
        .unwrap();
    // Not ready while it waits for the lease (nothing answers) or starts the node
    // (NOT_SERVING): SERVING only once the node server serves (the URI file is written
    // just before).
    eventually("the successor takes the lease and serves", || {
        let status = health(health_port);
        let serves = next.grpc_uri().exists();
        if status == Some(ServingStatus::Serving) {
            assert!(serves, "SERVING before the node server serves");
        }
        serves && status == Some(ServingStatus::Serving)
    });
    let epoch = pg.query(&format!(
        "SELECT epoch FROM node_lease WHERE node_id = '\\x{id}'::bytea"
    ));
    assert_eq!(epoch, [["2"]]);

    // The stalled one resumes: it stops itself, and not one row it wrote is there.
    kill("-CONT", stale);
    eventually("the stale node-host exits", || !alive(stale));
    let log = std::fs::read_to_string(dir.log()).unwrap();
    assert!(log.contains("the node's lease was lost"), "{log}");
    // The scheduler reaps it a moment after it is gone.
    let scheduler_log = || std::fs::read_to_string(s.log().unwrap()).unwrap_or_default();
    eventually(
        "the scheduler sees it exit with the lease-lost status",
        || scheduler_log().contains("exit status: 75"),
    );
    assert_eq!(rows(&pg), before, "the stale node-host wrote nothing");
    assert!(
        successor.try_wait().unwrap().is_none(),
        "the successor runs on"
    );
    successor.kill().unwrap();
    let _ = successor.wait();
}

/// The plaintext health port's overall status, `None` while nothing answers.
fn health(port: u16) -> Option<ServingStatus> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
            .ok()?;
        let status = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .ok()?
            .into_inner()
            .status;
        ServingStatus::try_from(status).ok()
    })
}

/// The stalled node-host's command line for the successor: its own directory, its own
/// ports, no log file, never idle.
fn successor_args(stale: u32, dir: &std::path::Path, url_file: &std::path::Path) -> Vec<String> {
    let cmdline = std::fs::read(format!("/proc/{stale}/cmdline")).unwrap();
    let mut args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .skip(1)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let mut out = Vec::new();
    let mut it = args.drain(..);
    while let Some(a) = it.next() {
        let value = it.next().unwrap_or_default();
        let value = match a.as_str() {
            "--data-dir" => dir.display().to_string(),
            "--state-database-url-file" => url_file.display().to_string(),
            "--listen" | "--p2p-listen" => "127.0.0.1:0".into(),
            "--idle-timeout" => "0".into(),
            "--log-file" | "--events-socket" => continue,
            _ => value,
        };
        out.push(a);
        out.push(value);
    }
    out
}

#[test]
fn a_node_kept_in_postgres_is_exported_from_the_database_with_its_channel_and_runs_no_more() {
    let Some(pg) = Postgres::start() else { return };
    let files = tempfile::tempdir().unwrap();
    let url_file = pg.url_file(files.path());
    let pair =
        Pair::connected_with(&["--node-state-database-url-file", url_file.to_str().unwrap()]);
    pair.fund_channel();
    pair.confirm_channel();
    let paid_before = invoice(&pair.b, 1_000_000, "before-the-export");
    pair.a.call(&["pay", &paid_before]);
    eventually("B is paid", || paid(&pair.b, "before-the-export"));
    let (s, a) = (&pair.s, &pair.a.cli);
    let a_id = a.node_id();
    let dir = s.node_dir(&a_id);
    assert!(dir.state_in_database().exists() && !dir.ldk_store().exists());

    let out = tempfile::tempdir().unwrap();
    let into = out.path().join("node");
    let r = a.run(&["export", into.to_str().unwrap(), "--yes"]).unwrap();
    assert!(r.ok, "signer-cli export failed: {}", r.stderr);

    // The export is the node's own store, its channel in it, and nothing that would tie
    // it to the operator's database.
    assert_eq!(
        skylight_test_support::stored_monitors(&into).len(),
        1,
        "the channel's monitor came out of the database into the export"
    );
    for left in [
        "state-in-database",
        "state-database-url",
        "state-database-ca.pem",
    ] {
        assert!(!into.join(left).exists(), "{left} is in the export");
    }
    // The hosted copy stays in the database alone, and the lease the export took is
    // given back.
    assert!(
        !dir.ldk_store().exists(),
        "the export's copy is not left behind"
    );
    let lease = pg.query(&format!(
        "SELECT expires_at <= now() FROM node_lease WHERE node_id = '\\x{a_id}'::bytea"
    ));
    assert_eq!(lease, [["t"]]);
    let schedule = a.run(&["schedule"]).unwrap();
    assert!(
        !schedule.ok && schedule.stderr.contains("exported"),
        "{}",
        schedule.stderr
    );
}
