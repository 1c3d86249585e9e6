//! Revoking a device, through the real binaries: by the tenant (`signer-cli revoke`) and by
//! the operator (`scheduler tenant revoke-device`). The scheduler, the tenant's node-host
//! and its signer each refuse the device, also after each of them restarts.

use skylight_client::signed_request::RequestSigner;
use skylight_client::tls::{self, TlsIdentity};
use skylight_proto::cln::node_client::NodeClient;
use skylight_proto::cln::{GetinfoRequest, PayRequest};
use skylight_test_support::{Scheduler, SignerCli, eventually};

/// A second device of `cli`'s tenant: its own directory, the same seed, recovered.
fn another_device(s: &Scheduler, cli: &SignerCli) -> SignerCli {
    let device = SignerCli::new(s).unwrap();
    let secret = std::fs::read(cli.dir.join("hsm_secret")).unwrap();
    let init = device
        .run_with_input(
            &["init", "--import-secret-hex"],
            &hex::encode(&secret[..32]),
        )
        .unwrap();
    assert!(init.ok, "{}", init.stderr);
    let r = device.run(&["recover"]).unwrap();
    assert!(r.ok, "{}", r.stderr);
    device
}

/// A device's name, from its certificate.
fn name_of(device: &SignerCli) -> String {
    let cn = skylight_certs::subject_cn(std::str::from_utf8(&device.identity().cert_pem).unwrap())
        .unwrap();
    cn.rsplit('/').next().unwrap().to_string()
}

/// The node's URI, as the tenant's own device schedules it.
fn node_uri(cli: &SignerCli) -> String {
    let r = cli.run(&["schedule"]).unwrap();
    assert!(r.ok, "{}", r.stderr);
    r.stdout.trim().to_string()
}

fn refused_as_revoked(r: &skylight_test_support::Run, what: &str) {
    assert!(
        !r.ok && r.stderr.contains("PermissionDenied") && r.stderr.contains("revoked"),
        "{what}: {}",
        r.stderr
    );
}

/// `device`'s calls straight to the node at `uri` (not through the scheduler), signed with
/// its key and rune.
struct Direct {
    node: NodeClient<tonic::transport::Channel>,
    sign: RequestSigner,
}

impl Direct {
    async fn to(uri: &str, device: &SignerCli) -> Direct {
        let creds = skylight_client::creds::load(&device.dir.join("credentials.gfs")).unwrap();
        let id: TlsIdentity = skylight_client::creds::identity(&creds);
        Direct {
            node: NodeClient::new(tls::channel(uri, &id).await.unwrap()),
            sign: RequestSigner::new(&creds.key)
                .unwrap()
                .with_rune(&creds.rune),
        }
    }

    async fn getinfo(&mut self) -> Result<(), tonic::Status> {
        let req = self.sign.sign(GetinfoRequest {}).unwrap();
        self.node.getinfo(req).await.map(|_| ())
    }

    async fn pay(&mut self, bolt11: &str) -> tonic::Status {
        let req = self
            .sign
            .sign(PayRequest {
                bolt11: bolt11.into(),
                retry_for: Some(1),
                ..Default::default()
            })
            .unwrap();
        self.node.pay(req).await.unwrap_err()
    }
}

/// The three refusals: scheduler, node-host, and (with node-host made to serve the device
/// anyway) the signer.
fn all_refuse(
    rt: &tokio::runtime::Runtime,
    cli: &SignerCli,
    device: &SignerCli,
    faults: &std::path::Path,
    round: &str,
) {
    refused_as_revoked(
        &device.run(&["schedule"]).unwrap(),
        &format!("{round}: scheduler"),
    );
    let uri = node_uri(cli);
    let st = rt
        .block_on(async { Direct::to(&uri, device).await.getinfo().await })
        .unwrap_err();
    assert_eq!(
        st.code(),
        tonic::Code::PermissionDenied,
        "{round}: node-host: {st:?}"
    );
    assert!(
        st.message().contains("revoked"),
        "{round}: node-host: {st:?}"
    );
    // A node-host that serves it anyway ships its Pay to the signer, which refuses it.
    std::fs::write(faults, "ignore-revocations\n").unwrap();
    let bolt11 = skylight_test_support::unreachable_invoice();
    let st = rt.block_on(async { Direct::to(&uri, device).await.pay(&bolt11).await });
    std::fs::write(faults, "").unwrap();
    assert_eq!(
        st.code(),
        tonic::Code::PermissionDenied,
        "{round}: signer: {st:?}"
    );
    assert!(
        st.message().contains("its device was revoked"),
        "{round}: signer: {st:?}"
    );
}

/// As [`eventually`], showing the signer's log if it does not happen.
fn eventually_or_log(cli: &SignerCli, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !cond() {
        if std::time::Instant::now() > deadline {
            panic!(
                "{what} did not happen; the signer said ({}):\n{}\nrevoked: {:?}",
                cli.log().display(),
                std::fs::read_to_string(cli.log()).unwrap_or_default(),
                std::fs::read_to_string(cli.dir.join("revoked-devices.json"))
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_revoked_device_is_refused_by_the_scheduler_node_host_and_signer_also_after_each_restarts() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let faults_dir = tempfile::tempdir().unwrap();
    let faults = faults_dir.path().join("faults");
    std::fs::write(&faults, "").unwrap();
    let mut s = Scheduler::start_with_env(
        &[],
        &[("SKYLIGHT_NODE_HOST_FAULTS", faults.to_str().unwrap())],
    )
    .unwrap();
    let cli = SignerCli::registered(&s).unwrap();
    let phone = another_device(&s, &cli);
    let laptop = another_device(&s, &cli);
    let mut signer = cli.spawn(&["run"]).unwrap();
    eventually("the phone reaches the node", || {
        phone.run(&["node", "getinfo"]).unwrap().ok
    });

    // The tenant revokes the phone from its main device.
    let phone_name = name_of(&phone);
    let r = cli.run(&["revoke", &phone_name]).unwrap();
    assert!(r.ok && r.stdout.contains("revoked"), "{}", r.stderr);
    let listed = cli.run(&["devices"]).unwrap();
    assert!(listed.ok, "{}", listed.stderr);
    let phone_line = listed
        .stdout
        .lines()
        .find(|l| l.starts_with(&phone_name))
        .unwrap();
    assert!(
        !phone_line.contains(" - "),
        "listed as revoked: {phone_line}"
    );
    all_refuse(&rt, &cli, &phone, &faults, "at once");

    // The operator revokes the laptop.
    let node_id = cli.node_id();
    let laptop_name = name_of(&laptop);
    let out = s
        .command(&["tenant", "revoke-device", &node_id, &laptop_name])
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    refused_as_revoked(&laptop.run(&["schedule"]).unwrap(), "operator: scheduler");
    // The main device is still served.
    assert!(cli.run(&["node", "getinfo"]).unwrap().ok);

    // Every component restarted: the scheduler (and with it the node-host), and the
    // signer, which learns the operator's revocation from the scheduler's list.
    s.restart().unwrap();
    drop(signer);
    signer = cli.spawn(&["run"]).unwrap();
    eventually_or_log(&cli, "the signer records the operator's revocation", || {
        std::fs::read_to_string(cli.dir.join("revoked-devices.json"))
            .is_ok_and(|t| t.contains(&laptop_name))
    });
    eventually("the node runs with its signer again", || {
        cli.run(&["node", "getinfo"]).unwrap().ok
    });
    all_refuse(&rt, &cli, &phone, &faults, "after restarts");
    all_refuse(&rt, &cli, &laptop, &faults, "operator, after restarts");
    drop(signer);
}
