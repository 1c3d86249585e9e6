//! Leaving Skylight: `ExportNode` through the real scheduler, node-host and signer-cli, for a
//! tenant with a channel paid over both ways.
//! The hosted node stops for good (a Schedule racing the export and every later one are
//! refused), every call gives the same URL, the file downloads over the scheduler's TLS to
//! the URL's holder, opens with the seed (signer-cli, and Greenlight's published client),
//! and an export a SIGKILL interrupted is finished after the restart without the node ever
//! running in between.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use skylight_client::export::{archive, seal};
use skylight_client::keys::NodeKeys;
use skylight_client::secret::HsmSecret;
use skylight_test_support::pair::{Pair, invoice, paid};
use skylight_test_support::{Scheduler, SignerCli, alive, eventually, node_pid};

/// The URL `signer-cli export` printed.
fn url_of(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("export:"))
        .expect("signer-cli export prints the URL")
        .trim()
        .to_string()
}

/// ExportNode called as any Greenlight client would, with the device's certificate.
fn export_node(s: &Scheduler, cli: &SignerCli) -> Result<String, tonic::Status> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = skylight_client::tls::scheduler(&s.uri, &cli.identity())
            .await
            .unwrap();
        c.export_node(skylight_proto::scheduler::ExportNodeRequest {})
            .await
            .map(|r| r.into_inner().url)
    })
}

/// GET `url` trusting the scheduler's CA only, with no client certificate: status, body.
fn download(s: &Scheduler, url: &str) -> (u16, Vec<u8>) {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = std::fs::read(s.dir.join("ca.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder()
        .with_root_certificates(Arc::new(roots))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .build()
            .unwrap();
        let resp = client.get(url).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.bytes().await.unwrap().to_vec())
    })
}

fn tenant_line(s: &Scheduler, node_id: &str) -> String {
    let out = s.command(&["tenant", "list"]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with(node_id))
        .unwrap_or_else(|| panic!("{node_id} not in the tenant list"))
        .to_string()
}

#[test]
fn an_exported_node_never_runs_again_and_its_one_url_opens_with_the_seed_only() {
    // Two tenants with a channel, paid over both ways: A leaves with it.
    let pair = Pair::with_channel();
    let to_b = invoice(&pair.b, 5_000_000, "before the export: A pays B");
    pair.a.call(&["pay", &to_b]);
    eventually("B is paid", || paid(&pair.b, "before the export: A pays B"));
    let to_a = invoice(&pair.a, 1_000_000, "before the export: B pays A");
    pair.b.call(&["pay", &to_a]);
    eventually("A is paid", || paid(&pair.a, "before the export: B pays A"));
    let (s, a, b) = (&pair.s, &pair.a.cli, &pair.b.cli);
    let node_id = a.node_id();
    assert!(tenant_line(s, &node_id).contains(" active "));
    let pid = node_pid(s, &node_id).expect("A's node-host runs");

    // Schedules racing the export, from another thread, until it has returned.
    let done = Arc::new(AtomicBool::new(false));
    let racer = {
        let (done, a2) = (done.clone(), a.sharing());
        std::thread::spawn(move || {
            let mut after = Vec::new();
            let mut before = 0;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let r = a2.run(&["schedule"]).unwrap();
                if finished {
                    after.push(r);
                    if after.len() >= 3 {
                        return (before, after);
                    }
                } else {
                    before += 1;
                }
            }
        })
    };
    let out = tempfile::tempdir().unwrap();
    let into = out.path().join("node");
    let started = Instant::now();
    let r = a.run(&["export", into.to_str().unwrap(), "--yes"]).unwrap();
    done.store(true, Ordering::SeqCst);
    eprintln!("signer-cli export took {:?}", started.elapsed());
    assert!(r.ok, "signer-cli export failed: {}", r.stderr);
    let url = url_of(&r.stdout);
    assert!(
        url.starts_with(&format!("{}/exports/", s.export_uri)),
        "{url}"
    );
    assert!(
        r.stdout.contains("node-host standalone --from-export"),
        "{}",
        r.stdout
    );

    // The node-host is gone, and no Schedule after the export starts one.
    assert!(!alive(pid), "A's node-host still runs after its export");
    let (raced, after) = racer.join().unwrap();
    eprintln!("{raced} Schedule calls raced the export");
    for r in &after {
        assert!(
            !r.ok && r.stderr.contains("FailedPrecondition") && r.stderr.contains("exported"),
            "a Schedule after the export: {} {}",
            r.stdout,
            r.stderr
        );
    }
    assert!(node_pid(s, &node_id).is_none_or(|p| !alive(p)));
    assert!(tenant_line(s, &node_id).contains(" exported "));
    // B is not touched by A's export.
    assert!(b.run(&["schedule"]).unwrap().ok);

    // Every later call gives the same URL; a signer waiting for the node is told why not.
    assert_eq!(export_node(s, a).unwrap(), url);
    let waiting = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut c = skylight_client::tls::scheduler(&s.uri, &a.identity())
            .await
            .unwrap();
        c.get_node_info(skylight_proto::scheduler::NodeInfoRequest {
            node_id: hex::decode(&node_id).unwrap(),
            wait: true,
        })
        .await
    });
    let status = waiting.expect_err("GetNodeInfo(wait) of an exported node");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert_eq!(export_node(s, a).unwrap(), url);

    // What was unpacked is the node's state, and nothing of the operator's.
    for kept in ["ldk.redb", "identity.json"] {
        assert!(into.join(kept).exists(), "{kept} is not in the export");
    }
    for left in [
        "bitcoind-auth",
        "server-key.pem",
        "node-host.pid",
        "grpc-uri",
    ] {
        assert!(!into.join(left).exists(), "{left} is in the export");
    }
    // Its identity: the node, and the CAs a node started from it needs to be the same node
    // to the devices.
    let identity: serde_json::Value =
        serde_json::from_slice(&std::fs::read(into.join("identity.json")).unwrap()).unwrap();
    assert_eq!(identity["node_id"], node_id.as_str());
    for pem in [
        "tenant_ca_cert_pem",
        "tenant_ca_key_pem",
        "users_ca_cert_pem",
    ] {
        assert!(
            identity[pem]
                .as_str()
                .is_some_and(|p| p.contains("-----BEGIN")),
            "{pem} is not in identity.json"
        );
    }
    // A second export into the same directory is refused before anything is asked.
    let again = a.run(&["export", into.to_str().unwrap(), "--yes"]).unwrap();
    assert!(
        !again.ok && again.stderr.contains("not empty"),
        "{}",
        again.stderr
    );

    // The URL's holder downloads it without a client certificate; it opens with A's seed
    // only, and its manifest names A.
    let (status, sealed) = download(s, &url);
    assert_eq!(status, 200);
    let secret = HsmSecret::load(&a.dir.join("hsm_secret")).unwrap();
    let keys = NodeKeys::derive(&secret, bitcoin::Network::Regtest);
    let plain = seal::open(&keys, &sealed).unwrap();
    let (manifest, _) = archive::read(&plain).unwrap();
    assert_eq!(manifest.node_id, node_id);
    assert_eq!(
        skylight_test_support::stored_monitors(&into).len(),
        1,
        "the channel's monitor is in the export"
    );
    let other = HsmSecret::load(&b.dir.join("hsm_secret")).unwrap();
    assert!(
        seal::open(
            &NodeKeys::derive(&other, bitcoin::Network::Regtest),
            &sealed
        )
        .is_err()
    );
    let (status, _) = download(s, &format!("{}/exports/{}", s.export_uri, "00".repeat(32)));
    assert_eq!(status, 404, "a guessed token");

    // Greenlight's published client opens it with the seed.
    let Some(python) = skylight_test_support::interop_python(&["glclient"]) else {
        eprintln!(
            "gl-client is not installed: the backup_decrypt_with_seed check did not run (`bash .ci/run` installs it)"
        );
        return;
    };
    let file = out.path().join("node.skylight-export");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        sealed,
        "signer-cli keeps the sealed file"
    );
    let script = "import sys, glclient\n\
        data = open(sys.argv[1], 'rb').read()\n\
        seed = open(sys.argv[2], 'rb').read()\n\
        plain = bytes(glclient.backup_decrypt_with_seed(data, seed))\n\
        assert plain[:13] == b'manifest.json', plain[:100]\n\
        print('decrypted', len(plain))\n";
    let run = Command::new(python)
        .args(["-c", script])
        .arg(&file)
        .arg(a.dir.join("hsm_secret"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "gl-client could not decrypt the export:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        format!("decrypted {}", plain.len())
    );
}

#[test]
fn an_export_interrupted_by_sigkill_finishes_after_the_restart_and_the_node_never_runs_between() {
    let mut s = Scheduler::start(&[]).unwrap();
    let a = SignerCli::registered(&s).unwrap();
    let node_id = a.node_id();
    assert!(a.run(&["schedule"]).unwrap().ok);
    let pid = node_pid(&s, &node_id).expect("A's node-host runs");
    // A node-host that cannot stop holds the export at its first step after the record.
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let exporting = {
        let a2 = a.sharing();
        std::thread::spawn(move || a2.run(&["export", "/nonexistent/never", "--yes"]).unwrap())
    };
    let start = Instant::now();
    eventually("the export is recorded", || {
        tenant_line(&s, &node_id).contains(" exporting ")
    });
    eprintln!("export recorded after {:?}", start.elapsed());
    s.kill_and_restart().unwrap();
    assert!(
        !exporting.join().unwrap().ok,
        "the export outlived its scheduler"
    );
    assert!(
        !alive(pid),
        "the restarted scheduler left the old node-host"
    );
    let log = s.node_dir(&node_id).log();
    let log_len = std::fs::metadata(&log).unwrap().len();

    // The next call (or the restart itself) finishes it; every call gives one URL.
    let url = export_node(&s, &a).unwrap();
    assert_eq!(export_node(&s, &a).unwrap(), url);
    assert!(tenant_line(&s, &node_id).contains(" exported "));
    let refused = a.run(&["schedule"]).unwrap();
    assert!(
        !refused.ok && refused.stderr.contains("exported"),
        "{}",
        refused.stderr
    );
    // The node never started again: its log did not grow, and no process holds it.
    assert_eq!(std::fs::metadata(&log).unwrap().len(), log_len);
    assert!(node_pid(&s, &node_id).is_none_or(|p| !alive(p)));
    let (status, sealed) = download(&s, &url);
    assert_eq!(status, 200);
    let secret = HsmSecret::load(&a.dir.join("hsm_secret")).unwrap();
    let plain = seal::open(
        &NodeKeys::derive(&secret, bitcoin::Network::Regtest),
        &sealed,
    )
    .unwrap();
    assert_eq!(archive::read(&plain).unwrap().0.node_id, node_id);
}
