//! Tenant identity end to end, through the real `scheduler` and `signer-cli` binaries:
//! register, recover, challenges, invite codes, restart. (Who may reach what: see
//! `isolation.rs`.)

use bitcoin::Network;
use skylight_certs::names;
use skylight_client::device::DeviceRequest;
use skylight_client::identity;
use skylight_client::keys::NodeKeys;
use skylight_client::runes::{RuneContext, RuneMaster};
use skylight_client::secret::HsmSecret;
use skylight_client::tls::{self, TlsIdentity};
use skylight_proto::scheduler::scheduler_client::SchedulerClient;
use skylight_proto::scheduler::{
    ChallengeRequest, ChallengeScope, ListInviteCodesRequest, RecoveryRequest, RegistrationRequest,
    UpgradeRequest,
};
use skylight_test_support::{Scheduler, SignerCli, code_of, new_keys, register_invited, status_of};
use tonic::Code;
use tonic::transport::Channel;

async fn challenge(
    c: &mut SchedulerClient<Channel>,
    scope: ChallengeScope,
    keys: &NodeKeys,
) -> Vec<u8> {
    c.get_challenge(ChallengeRequest {
        scope: scope as i32,
        node_id: keys.node_id_bytes().to_vec(),
    })
    .await
    .expect("GetChallenge")
    .into_inner()
    .challenge
}

fn csr_for(keys: &NodeKeys, device: &str) -> Vec<u8> {
    DeviceRequest::new(&names::device_cn(
        &hex::encode(keys.node_id_bytes()),
        device,
    ))
    .unwrap()
    .csr_pem
    .into_bytes()
}

fn registration(keys: &NodeKeys, challenge: Vec<u8>, invite: &str) -> RegistrationRequest {
    RegistrationRequest {
        node_id: keys.node_id_bytes().to_vec(),
        network: "regtest".into(),
        signature: keys.sign_challenge(&challenge).to_vec(),
        challenge,
        signer_proto: "v25.05".into(),
        csr: csr_for(keys, "default"),
        invite_code: invite.into(),
        ..Default::default()
    }
}

/// A call to `uri` signed by `id`'s device key, as a rune check sees it.
fn call(uri: &str, id: &TlsIdentity) -> RuneContext {
    let pem = String::from_utf8(id.key_pem.clone()).unwrap();
    RuneContext {
        uri: uri.into(),
        pubkey: rcgen::KeyPair::from_pem(&pem)
            .unwrap()
            .public_key_raw()
            .to_vec(),
        time: 0,
    }
}

#[tokio::test]
async fn register_then_recover_through_the_binaries() {
    // Tenants get invite codes to share only where the operator says so.
    let s = Scheduler::start(&["--invites-per-tenant", "3"]).unwrap();
    let cli = SignerCli::new(&s).unwrap();
    let init = cli.run(&["init"]).unwrap();
    assert!(init.ok, "{}", init.stderr);
    assert!(init.stdout.contains("recovery words"));
    let node = cli.node_id();

    // No invite code: refused, and told why.
    let r = cli.run(&["register"]).unwrap();
    assert!(!r.ok);
    assert!(
        r.stderr.contains("PermissionDenied") && r.stderr.contains("invite code"),
        "{}",
        r.stderr
    );

    let code = s.invite(1).unwrap().remove(0);
    let r = cli.run(&["register", "--invite", &code]).unwrap();
    assert!(r.ok, "{}", r.stderr);
    let device = cli.identity();
    let registered_rune = skylight_client::creds::load(&cli.dir.join("credentials.gfs"))
        .unwrap()
        .rune;
    let cert = String::from_utf8(device.cert_pem.clone()).unwrap();
    assert_eq!(
        skylight_certs::subject_cn(&cert).unwrap(),
        names::device_cn(&node, "default")
    );
    // Leaf, tenant CA, users CA, root: what Greenlight's clients need to present.
    assert_eq!(cert.matches("BEGIN CERTIFICATE").count(), 4);

    let r = cli
        .run(&["register", "--invite", &s.invite(1).unwrap()[0]])
        .unwrap();
    assert!(!r.ok);
    assert!(r.stderr.contains("AlreadyExists"), "{}", r.stderr);

    let r = cli.run(&["recover"]).unwrap();
    assert!(r.ok, "{}", r.stderr);
    let recovered = cli.identity();
    let cn = skylight_certs::subject_cn(std::str::from_utf8(&recovered.cert_pem).unwrap()).unwrap();
    assert!(cn.starts_with(&format!("/users/{node}/recovered-")), "{cn}");

    // Each device's credentials carry its rune, minted from the seed and bound to the key
    // of that device alone.
    let master = RuneMaster::new(&HsmSecret::load(&cli.dir.join("hsm_secret")).unwrap());
    let recovered_rune = skylight_client::creds::load(&cli.dir.join("credentials.gfs"))
        .unwrap()
        .rune;
    for (rune, id) in [(&registered_rune, &device), (&recovered_rune, &recovered)] {
        master
            .check(rune, &call("/cln.Node/Pay", id))
            .expect("a device's rune allows its own calls");
    }
    assert!(
        master
            .check(&recovered_rune, &call("/cln.Node/Pay", &device))
            .is_err(),
        "a rune serves no other device's key"
    );

    // Both certificates work: recovering does not revoke the earlier device.
    for id in [&device, &recovered] {
        let mut c = tls::scheduler(&s.uri, id).await.unwrap();
        let codes = c
            .list_invite_codes(ListInviteCodesRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(codes.invite_code_list.len(), 3);
        assert!(codes.invite_code_list.iter().all(|c| !c.is_redeemed));
    }

    let show = cli.run(&["show"]).unwrap();
    assert!(
        show.ok && show.stdout.contains(&node) && show.stdout.contains("expires"),
        "{}",
        show.stdout
    );
    assert!(show.stdout.contains(&s.uri));

    // The secret and the credentials are the owner's alone.
    use std::os::unix::fs::PermissionsExt;
    for f in ["hsm_secret", "credentials.gfs"] {
        let mode = std::fs::metadata(cli.dir.join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }

    // Credentials saved before devices had runes: the device mints its own at its next node
    // call (it holds the seed) and keeps it.
    let path = cli.dir.join("credentials.gfs");
    let mut old = skylight_client::creds::load(&path).unwrap();
    old.rune.clear();
    skylight_client::creds::save(&path, &old).unwrap();
    let r = cli.run(&["node", "getinfo"]).unwrap();
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(
        skylight_client::creds::load(&path).unwrap().rune,
        recovered_rune
    );
}

#[tokio::test]
async fn an_imported_mnemonic_gives_the_greenlight_node_and_recover_of_an_unknown_node_is_not_found()
 {
    let s = Scheduler::start(&[]).unwrap();
    let cli = SignerCli::new(&s).unwrap();
    let words = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
    let r = cli
        .run_with_input(&["init", "--import-mnemonic"], words)
        .unwrap();
    assert!(r.ok, "{}", r.stderr);
    assert!(!r.stdout.contains("recovery words"));
    let expected = NodeKeys::derive(&HsmSecret::from_mnemonic(words).unwrap(), Network::Regtest);
    assert_eq!(cli.node_id(), hex::encode(expected.node_id_bytes()));

    let r = cli.run(&["recover"]).unwrap();
    assert!(!r.ok);
    assert!(r.stderr.contains("NotFound"), "{}", r.stderr);

    // init never replaces a secret.
    let r = cli.run(&["init"]).unwrap();
    assert!(!r.ok && r.stderr.contains("exists already"), "{}", r.stderr);

    // The library reports the status code itself.
    let err = identity::recover(&s.uri, &s.nobody(), &new_keys())
        .await
        .unwrap_err();
    assert_eq!(status_of(&err).unwrap().code(), Code::NotFound);
}

#[tokio::test]
async fn challenges_are_single_use_scoped_and_signed_by_the_node_key() {
    let s = Scheduler::start(&["--require-invite", "false"]).unwrap();
    let mut c = tls::scheduler(&s.uri, &s.nobody()).await.unwrap();
    let keys = new_keys();

    // A bad signature: signed by another key.
    let ch = challenge(&mut c, ChallengeScope::Register, &keys).await;
    let mut req = registration(&keys, ch, "");
    req.signature = new_keys().sign_challenge(&req.challenge).to_vec();
    assert_eq!(code_of(c.register(req).await), Code::Unauthenticated);

    // A challenge issued for RECOVER does not register.
    let ch = challenge(&mut c, ChallengeScope::Recover, &keys).await;
    assert_eq!(
        code_of(c.register(registration(&keys, ch, "")).await),
        Code::Unauthenticated
    );

    // A challenge never issued.
    assert_eq!(
        code_of(c.register(registration(&keys, vec![7; 32], "")).await),
        Code::Unauthenticated
    );

    // A challenge issued for another node.
    let other = new_keys();
    let ch = challenge(&mut c, ChallengeScope::Register, &other).await;
    assert_eq!(
        code_of(c.register(registration(&keys, ch, "")).await),
        Code::Unauthenticated
    );

    // Used once, then never again.
    let ch = challenge(&mut c, ChallengeScope::Register, &keys).await;
    c.register(registration(&keys, ch.clone(), ""))
        .await
        .expect("register");
    let again = code_of(c.register(registration(&keys, ch, "")).await);
    assert_eq!(again, Code::Unauthenticated);

    // Recover with a reused challenge.
    let ch = challenge(&mut c, ChallengeScope::Recover, &keys).await;
    let recover = |ch: Vec<u8>| RecoveryRequest {
        node_id: keys.node_id_bytes().to_vec(),
        signature: keys.sign_challenge(&ch).to_vec(),
        challenge: ch,
        csr: csr_for(&keys, "phone"),
    };
    c.recover(recover(ch.clone())).await.expect("recover");
    assert_eq!(code_of(c.recover(recover(ch)).await), Code::Unauthenticated);
}

#[tokio::test]
async fn an_expired_challenge_is_refused() {
    // Challenges that expire at once: any use is after expiry.
    let s = Scheduler::start(&["--require-invite", "false", "--challenge-ttl", "0"]).unwrap();
    let mut c = tls::scheduler(&s.uri, &s.nobody()).await.unwrap();
    let keys = new_keys();
    let ch = challenge(&mut c, ChallengeScope::Register, &keys).await;
    let status = c.register(registration(&keys, ch, "")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("expired"), "{}", status.message());
}

#[tokio::test]
async fn malformed_requests_get_invalid_argument_with_a_reason() {
    let s = Scheduler::start(&[]).unwrap();
    let mut c = tls::scheduler(&s.uri, &s.nobody()).await.unwrap();
    let keys = new_keys();
    let code = s.invite(1).unwrap().remove(0);

    // Wrong network.
    let ch = challenge(&mut c, ChallengeScope::Register, &keys).await;
    let mut req = registration(&keys, ch, &code);
    req.network = "bitcoin".into();
    let st = c.register(req).await.unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument);
    assert!(st.message().contains("regtest"), "{}", st.message());

    // A CSR that is not one.
    let ch = challenge(&mut c, ChallengeScope::Register, &keys).await;
    let mut req = registration(&keys, ch, &code);
    req.csr =
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n".to_vec();
    assert_eq!(code_of(c.register(req).await), Code::InvalidArgument);

    // A CSR made out for another node.
    let ch = challenge(&mut c, ChallengeScope::Register, &keys).await;
    let mut req = registration(&keys, ch, &code);
    req.csr = csr_for(&new_keys(), "default");
    let st = c.register(req).await.unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument);
    assert!(st.message().contains("CSR"), "{}", st.message());

    // A node id that is no public key; a scope that does not exist.
    let st = c
        .get_challenge(ChallengeRequest {
            scope: 0,
            node_id: vec![1; 33],
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument);
    let st = c
        .get_challenge(ChallengeRequest {
            scope: 9,
            node_id: keys.node_id_bytes().to_vec(),
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument);

    // An invite code that does not exist.
    let ch = challenge(&mut c, ChallengeScope::Register, &keys).await;
    let st = c
        .register(registration(&keys, ch, "zzzz-zzzz"))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::NotFound);

    // After all that, the code is still unused and the node registers with it.
    let ch = challenge(&mut c, ChallengeScope::Register, &keys).await;
    c.register(registration(&keys, ch, &code))
        .await
        .expect("register");
}

#[tokio::test]
async fn an_invite_code_is_redeemed_exactly_once_under_concurrency() {
    let s = Scheduler::start(&[]).unwrap();
    let code = s.invite(1).unwrap().remove(0);
    let nobody = s.nobody();
    let (a, b) = (new_keys(), new_keys());
    let (ra, rb) = tokio::join!(
        identity::register(&s.uri, &nobody, &a, "regtest", Some(&code)),
        identity::register(&s.uri, &nobody, &b, "regtest", Some(&code)),
    );
    let outcomes = [ra, rb];
    let ok = outcomes.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "exactly one registration may redeem the code");
    let loser = outcomes.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert_eq!(status_of(loser).unwrap().code(), Code::FailedPrecondition);

    let out = s.command(&["invite", "list"]).unwrap();
    let listing = String::from_utf8(out.stdout).unwrap();
    let line = listing.lines().find(|l| l.starts_with(&code)).unwrap();
    assert!(!line.ends_with(" -"), "the code shows as redeemed: {line}");
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused_at_the_handshake() {
    let s = Scheduler::start(&[]).unwrap();
    let v = skylight_certs::Validity::days(1);
    let rogue_root = skylight_certs::Authority::new_root(v).unwrap();
    let rogue_users = rogue_root.new_child_ca(names::USERS_CA_CN, v).unwrap();
    let rogue = rogue_users
        .issue_leaf(names::NOBODY_CN, &["localhost".into()], v)
        .unwrap();
    let id = TlsIdentity {
        ca_pem: s.nobody().ca_pem,
        cert_pem: format!("{}{}", rogue.cert_pem, rogue_users.cert_pem()).into_bytes(),
        key_pem: rogue.key_pem.into_bytes(),
    };
    let refused = match tls::scheduler(&s.uri, &id).await {
        Err(_) => true,
        Ok(mut c) => c
            .get_challenge(ChallengeRequest {
                scope: 0,
                node_id: new_keys().node_id_bytes().to_vec(),
            })
            .await
            .is_err(),
    };
    assert!(refused, "a certificate outside our CA must not get in");
}

#[tokio::test]
async fn maybe_upgrade_records_the_signer_version_and_returns_the_old_one() {
    let s = Scheduler::start(&[]).unwrap();
    let (_, device) = register_invited(&s).await;
    let mut c = tls::scheduler(&s.uri, &device).await.unwrap();
    let old = c
        .maybe_upgrade(UpgradeRequest {
            signer_version: "v26.06".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .old_version;
    assert_eq!(old, identity::SIGNER_VERSION);
    let old = c
        .maybe_upgrade(UpgradeRequest {
            signer_version: "v26.06".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .old_version;
    assert_eq!(old, "v26.06");
}

#[tokio::test]
async fn tenants_and_invite_codes_survive_a_scheduler_restart() {
    // A client stays connected across the restart: the scheduler must still stop, after
    // its grace period.
    let mut s = Scheduler::start(&["--shutdown-grace", "1", "--invites-per-tenant", "3"]).unwrap();
    let (keys, device) = register_invited(&s).await;
    let spare = s.invite(2).unwrap();
    let before = String::from_utf8(s.command(&["invite", "list"]).unwrap().stdout).unwrap();
    let mut c = tls::scheduler(&s.uri, &device).await.unwrap();
    let codes_before = c
        .list_invite_codes(ListInviteCodesRequest {})
        .await
        .unwrap()
        .into_inner();

    s.restart().unwrap();
    assert!(s.is_running());

    // Operator view: the same codes, with the same redemptions.
    let after = String::from_utf8(s.command(&["invite", "list"]).unwrap().stdout).unwrap();
    let sorted = |t: &str| {
        let mut l: Vec<String> = t.lines().map(str::to_string).collect();
        l.sort();
        l
    };
    assert_eq!(sorted(&before), sorted(&after));
    for code in &spare {
        assert!(after.contains(code.as_str()));
    }
    let tenants = String::from_utf8(s.command(&["tenant", "list"]).unwrap().stdout).unwrap();
    assert!(tenants.contains(&hex::encode(keys.node_id_bytes())));

    // The old device certificate still works against the restarted scheduler (same CA).
    let mut c = tls::scheduler(&s.uri, &device).await.unwrap();
    let codes_after = c
        .list_invite_codes(ListInviteCodesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(codes_before, codes_after);

    // The tenant is still registered: register says so, recover works.
    let err = identity::register(&s.uri, &s.nobody(), &keys, "regtest", Some(&spare[0]))
        .await
        .unwrap_err();
    assert_eq!(status_of(&err).unwrap().code(), Code::AlreadyExists);
    identity::recover(&s.uri, &s.nobody(), &keys)
        .await
        .expect("recover after restart");
    s.stop().unwrap();
}
