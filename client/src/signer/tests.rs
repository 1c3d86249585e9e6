use bitcoin::secp256k1::PublicKey;
use vls_protocol::msgs::{DeBolt, HsmdInit2Reply, SerBolt};

use super::*;

fn init_request(id: u32) -> HsmRequest {
    let init = HsmdInit2 {
        derivation_style: 0,
        network_name: WireString(b"regtest".to_vec()),
        dev_seed: None,
        dev_allowlist: vls_protocol::serde_bolt::Array::new(),
    };
    HsmRequest {
        request_id: id,
        raw: init.as_vec(),
        ..Default::default()
    }
}

fn decode<T: DeBolt>(raw: &[u8]) -> T {
    T::from_vec(raw.to_vec()).unwrap_or_else(|e| panic!("reply does not decode: {e:?}"))
}

#[test]
fn the_first_init_creates_the_node_and_ships_its_state_to_the_node() {
    let mut s = Signer::new(&HsmSecret::from_bytes([0; 32]), Network::Regtest);
    let resp = s.handle(&init_request(1));
    assert!(resp.error.is_empty(), "{}", resp.error);
    let reply: HsmdInit2Reply = decode(&resp.raw);
    let node_id = PublicKey::from_slice(&reply.node_id.0).unwrap();
    // The same node id Greenlight derives for this seed.
    assert_eq!(
        node_id.to_string(),
        "02058e8b6c2ad363ec59aa136429256d745164c2bdc87f98f0a68690ec2c5c9b0b"
    );
    assert!(
        !resp.signer_state.is_empty(),
        "a new node's state goes to the node"
    );
    let keys: Vec<&str> = resp.signer_state.iter().map(|e| e.key.as_str()).collect();
    assert!(keys.iter().any(|k| k.starts_with("node")), "{keys:?}");

    // Until the node acknowledges, the news keeps coming; after, nothing is re-sent.
    let again = s.handle(&init_request(2));
    assert_eq!(again.signer_state.len(), resp.signer_state.len());
    s.acknowledged(&again.signer_state);
    let third = s.handle(&init_request(3));
    assert!(
        third.signer_state.is_empty(),
        "{:?}",
        third
            .signer_state
            .iter()
            .map(|e| &e.key)
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_node_restart_that_initialises_again_does_not_wedge_the_signer() {
    let mut s = Signer::new(&HsmSecret::from_bytes([7; 32]), Network::Regtest);
    for id in 1..=3 {
        s.begin_session();
        let resp = s.handle(&init_request(id));
        assert!(resp.error.is_empty(), "init {id}: {}", resp.error);
    }
}

#[test]
fn a_second_signer_device_restores_from_the_state_the_node_ships() {
    let secret = HsmSecret::from_bytes([9; 32]);
    let mut first = Signer::new(&secret, Network::Regtest);
    let created = first.handle(&init_request(1));
    // Another device with the same secret and no local state gets the node's copy.
    let mut second = Signer::new(&secret, Network::Regtest);
    let mut req = init_request(2);
    req.signer_state = created.signer_state.clone();
    let resp = second.handle(&req);
    assert!(resp.error.is_empty(), "{}", resp.error);
    let a: HsmdInit2Reply = decode(&created.raw);
    let b: HsmdInit2Reply = decode(&resp.raw);
    assert_eq!(a.node_id.0, b.node_id.0);
    assert!(
        resp.signer_state.is_empty(),
        "nothing new for a node that shipped everything"
    );
}

#[test]
fn the_node_cannot_ask_for_a_message_signature_and_garbage_is_refused() {
    let mut s = Signer::new(&HsmSecret::from_bytes([1; 32]), Network::Regtest);
    let resp = s.handle(&HsmRequest {
        request_id: 5,
        raw: vec![0, 23, 0, 1, 0x41],
        ..Default::default()
    });
    assert!(resp.error.starts_with("policy"), "{}", resp.error);
    let resp = s.handle(&HsmRequest {
        request_id: 6,
        raw: vec![0xff, 0xff, 1, 2, 3],
        ..Default::default()
    });
    assert!(resp.error.starts_with("policy"), "{}", resp.error);
    assert!(resp.raw.is_empty());
}

#[test]
fn a_gossip_request_disguising_a_challenge_proof_is_refused() {
    use vls_protocol::msgs::SignGossipMessage;
    use vls_protocol::serde_bolt::Octets;
    let mut s = Signer::new(&HsmSecret::from_bytes([2; 32]), Network::Regtest);
    assert!(s.handle(&init_request(1)).error.is_empty());
    let mut payload = b"Lightning Signed Message:".to_vec();
    payload.extend_from_slice(&[0u8; 32]);
    let resp = s.handle(&HsmRequest {
        request_id: 2,
        raw: SignGossipMessage {
            message: Octets(payload),
        }
        .as_vec(),
        ..Default::default()
    });
    assert!(resp.error.starts_with("policy"), "{}", resp.error);
    assert!(resp.raw.is_empty());
}

#[test]
fn a_request_that_makes_vls_panic_is_refused_and_the_signer_goes_on() {
    use vls_protocol::msgs::SignNodeAnnouncement;
    use vls_protocol::serde_bolt::Octets;
    let mut s = Signer::new(&HsmSecret::from_bytes([4; 32]), Network::Regtest);
    assert!(s.handle(&init_request(1)).error.is_empty());
    // Shorter than the 66 bytes VLS slices off unchecked.
    let resp = s.handle(&HsmRequest {
        request_id: 2,
        raw: SignNodeAnnouncement {
            announcement: Octets(vec![1, 2, 3]),
        }
        .as_vec(),
        ..Default::default()
    });
    assert!(resp.error.starts_with("policy"), "{}", resp.error);
    assert!(
        s.handle(&init_request(3)).error.is_empty(),
        "the next request is served"
    );
}

#[test]
fn a_state_fork_only_the_signer_has_gives_way_to_the_nodes_copy() {
    let secret = HsmSecret::from_bytes([6; 32]);
    let mut s = Signer::new(&secret, Network::Regtest);
    let created = s.handle(&init_request(1));
    let entry = created
        .signer_state
        .iter()
        .find(|e| e.key != "_WRITER")
        .unwrap()
        .clone();
    let mut forked = entry.clone();
    forked.value = b"{\"forked\":true}".to_vec();
    s.state_key.sign(&mut forked);
    s.merge(std::slice::from_ref(&forked)).unwrap();
    assert_eq!(
        s.local.get(&entry.key).unwrap().unwrap(),
        (forked.version, forked.value.clone())
    );
    // An older entry from the node never replaces ours.
    let mut older = entry.clone();
    older.version = 0;
    older.value = b"{}".to_vec();
    s.state_key.sign(&mut older);
    if entry.version > 0 {
        s.merge(std::slice::from_ref(&older)).unwrap();
        assert_eq!(s.local.get(&entry.key).unwrap().unwrap().1, forked.value);
    }
}

#[test]
fn no_state_shipped_to_the_node_contains_secret_bytes() {
    let secret = HsmSecret::from_bytes([0x5a; 32]);
    let mut s = Signer::new(&secret, Network::Regtest);
    let resp = s.handle(&init_request(1));
    assert!(!resp.signer_state.is_empty());
    for e in &resp.signer_state {
        for window in secret.bytes().windows(8) {
            assert!(
                !e.value.windows(8).any(|w| w == window),
                "entry {} carries secret bytes",
                e.key
            );
        }
    }
}

#[test]
fn altered_or_rolled_back_state_from_the_node_is_refused() {
    let secret = HsmSecret::from_bytes([0x33; 32]);
    let dir = tempfile::tempdir().unwrap();
    let marks = dir.path().join("marks.json");
    let mut s = Signer::new(&secret, Network::Regtest)
        .with_watermarks(&marks)
        .unwrap();
    let created = s.handle(&init_request(1));
    assert!(
        created.signer_state.iter().all(|e| e.signature.len() == 64),
        "every shipped entry is signed"
    );
    let entry = created
        .signer_state
        .iter()
        .find(|e| e.key != "_WRITER")
        .unwrap()
        .clone();

    // Altered by the node: the signature no longer covers it.
    let mut altered = entry.clone();
    altered.version += 1;
    let mut req = init_request(2);
    req.signer_state = vec![altered];
    let resp = s.handle(&req);
    assert!(
        resp.error.starts_with("policy") && resp.error.contains("not signed"),
        "{}",
        resp.error
    );

    // This device has since seen a newer version of that entry (its mark is raised, as
    // handling a later request would); a restarted signer still refuses the older one.
    {
        let mut s2 = Signer::new(&secret, Network::Regtest)
            .with_watermarks(&marks)
            .unwrap();
        s2.marks
            .raise([(entry.key.clone(), entry.version + 1)], &[])
            .unwrap();
    }
    let mut s3 = Signer::new(&secret, Network::Regtest)
        .with_watermarks(&marks)
        .unwrap();
    let mut req = init_request(4);
    req.signer_state = vec![entry.clone()];
    let resp = s3.handle(&req);
    assert!(resp.error.contains("rollback"), "{}", resp.error);
    // The node's signed, current copy is accepted.
    let mut fresh = Signer::new(&secret, Network::Regtest);
    let mut req = init_request(5);
    req.signer_state = created.signer_state.clone();
    assert!(fresh.handle(&req).error.is_empty());
}

#[test]
fn a_state_that_leaves_out_an_entry_the_device_has_seen_is_refused_after_a_restart() {
    let secret = HsmSecret::from_bytes([0x35; 32]);
    let dir = tempfile::tempdir().unwrap();
    let marks = dir.path().join("marks.json");
    let created = Signer::new(&secret, Network::Regtest)
        .handle(&init_request(1))
        .signer_state;
    // The device has seen all of it, and the node confirmed storing it: marks, no copies.
    Watermarks::open(&marks)
        .unwrap()
        .raise(created.iter().map(|e| (e.key.clone(), e.version)), &[])
        .unwrap();
    let left_out = created
        .iter()
        .find(|e| e.key.starts_with("node/"))
        .unwrap()
        .key
        .clone();
    let mut s = Signer::new(&secret, Network::Regtest)
        .with_watermarks(&marks)
        .unwrap();
    let mut req = init_request(2);
    req.signer_state = created
        .iter()
        .filter(|e| e.key != left_out)
        .cloned()
        .collect();
    let resp = s.handle(&req);
    assert!(
        resp.error.starts_with("policy")
            && resp.error.contains("leaves out")
            && resp.error.contains(&left_out),
        "{}",
        resp.error
    );
    assert!(resp.raw.is_empty(), "nothing signed");
    // The whole state, as an honest node ships it, is taken.
    let mut req = init_request(3);
    req.signer_state = created.clone();
    let resp = s.handle(&req);
    assert!(resp.error.is_empty(), "{}", resp.error);
}

#[test]
fn every_answer_a_refusal_too_is_proven_by_the_seed_the_node_id_attests() {
    use crate::state_key::StateKey;
    let secret = HsmSecret::from_bytes([0x36; 32]);
    let node_id = crate::keys::NodeKeys::derive(&secret, Network::Regtest).node_id;
    let mut s = Signer::new(&secret, Network::Regtest);
    let signed = init_request(1);
    let refused = HsmRequest {
        request_id: 2,
        raw: vec![0xff, 0xff, 1],
        ..Default::default()
    };
    for req in [signed, refused] {
        let resp = s.handle(&req);
        let proof = resp.skylight_proof.clone().expect("a proof");
        let key = StateKey::attested(&node_id, &proof.state_key, &proof.attestation)
            .expect("the node key attests the state key");
        assert!(
            key.verify_answer(&req.raw, &resp),
            "request {}",
            req.request_id
        );
        assert!(resp.signer_state.iter().all(|e| key.verify_entry(e)));
    }
}

/// A regtest invoice from some payee, for `hash_byte`.
fn invoice(hash_byte: u8) -> String {
    use bitcoin::hashes::{Hash, sha256};
    use bitcoin::secp256k1::{Secp256k1, SecretKey};
    use lightning_signer::lightning::types::payment::PaymentSecret;
    use lightning_signer::lightning_invoice::{Currency, InvoiceBuilder};
    let secp = Secp256k1::new();
    let payee = SecretKey::from_slice(&[0x55; 32]).unwrap();
    InvoiceBuilder::new(Currency::Regtest)
        .description("coffee".into())
        .payment_hash(sha256::Hash::from_byte_array([hash_byte; 32]))
        .payment_secret(PaymentSecret([1; 32]))
        .current_timestamp()
        .min_final_cltv_expiry_delta(144)
        .amount_milli_satoshis(10_000)
        .build_signed(|m| secp.sign_ecdsa_recoverable(m, &payee))
        .unwrap()
        .to_string()
}

/// A `Pay` request for `bolt11` as node-host ships it: the gRPC frame, signed by a device
/// of the seed `seed`, with the rune the seed minted for it.
fn signed_pay(seed: u8, bolt11: &str) -> skylight_proto::greenlight::PendingRequest {
    signed_request(
        seed,
        approvals::PAY_PATH,
        skylight_proto::cln::PayRequest {
            bolt11: bolt11.into(),
            ..Default::default()
        },
    )
}

fn preapprove(
    s: &mut Signer,
    id: u32,
    bolt11: &str,
    requests: Vec<skylight_proto::greenlight::PendingRequest>,
) -> HsmResponse {
    let raw = vls_protocol::msgs::PreapproveInvoice {
        invstring: WireString(bolt11.as_bytes().to_vec()),
    }
    .as_vec();
    s.handle(&HsmRequest {
        request_id: id,
        raw,
        requests,
        ..Default::default()
    })
}

#[test]
fn a_payment_is_approved_only_when_a_device_signed_pay_request_names_its_invoice() {
    let mut s = Signer::new(&HsmSecret::from_bytes([3; 32]), Network::Regtest);
    assert!(s.handle(&init_request(1)).error.is_empty());
    let wanted = invoice(7);

    // No signed request: refused, with the reason.
    let r = preapprove(&mut s, 2, &wanted, vec![]);
    assert!(r.error.starts_with("policy: no Pay request"), "{}", r.error);

    // A signed request for another invoice: refused.
    let r = preapprove(&mut s, 3, &wanted, vec![signed_pay(3, &invoice(8))]);
    assert!(r.error.starts_with("policy: no Pay request"), "{}", r.error);

    // The right invoice, but the request altered after signing: refused, and said so.
    let mut altered = signed_pay(3, &invoice(8));
    altered.request = signed_pay(3, &wanted).request;
    let refused = |r: HsmResponse, why: &str| {
        assert!(
            r.error
                .starts_with("policy: the Pay request naming this invoice counts for nothing")
                && r.error.contains(why),
            "{}",
            r.error
        )
    };
    refused(
        preapprove(&mut s, 4, &wanted, vec![altered]),
        "does not verify",
    );

    // A node-host signing with a key of its own (the signature verifies under that key)
    // and shipping a real device's rune: the rune is bound to the device's key, not its.
    let device = signed_pay(3, &invoice(8));
    let mut forged = signed_pay(3, &wanted);
    forged.rune = device.rune;
    refused(preapprove(&mut s, 6, &wanted, vec![forged]), "pubkey");
    // A rune another seed minted, or none at all.
    refused(
        preapprove(&mut s, 7, &wanted, vec![signed_pay(4, &wanted)]),
        "rune",
    );
    let mut runeless = signed_pay(3, &wanted);
    runeless.rune.clear();
    refused(preapprove(&mut s, 8, &wanted, vec![runeless]), "no rune");
    // Signed long ago (a request kept and shipped again later).
    let stale = signed_request_at(
        3,
        approvals::PAY_PATH,
        skylight_proto::cln::PayRequest {
            bolt11: wanted.clone(),
            ..Default::default()
        },
        now_ms() - 3_600_000,
    );
    refused(preapprove(&mut s, 9, &wanted, vec![stale]), "clock");

    // Signed and naming it: approved by VLS.
    let pay = signed_pay(3, &wanted);
    let r = preapprove(&mut s, 5, &wanted, vec![pay.clone()]);
    assert!(r.error.is_empty(), "{}", r.error);
    let reply: vls_protocol::msgs::PreapproveInvoiceReply = decode(&r.raw);
    assert!(reply.result);

    // That request approved its payment: shipped again, it approves no other.
    refused(
        preapprove(&mut s, 10, &wanted, vec![pay]),
        "approved a payment already",
    );
    // A new Pay request for it (the user retrying) does.
    let r = preapprove(&mut s, 11, &wanted, vec![signed_pay(3, &wanted)]);
    assert!(r.error.is_empty(), "{}", r.error);

    // Signed by a device since revoked: its rune no longer counts.
    let by_revoked = signed_pay(3, &wanted);
    s.revoked()
        .add(&[(by_revoked.pubkey.clone(), "phone".into())])
        .unwrap();
    refused(
        preapprove(&mut s, 12, &wanted, vec![by_revoked]),
        "its device was revoked",
    );
}

/// A client request at `path` with `message`, as node-host ships it: the gRPC frame,
/// signed now by a fresh device key, with the rune the seed `[seed; 32]` minted for it.
fn signed_request(
    seed: u8,
    path: &str,
    message: impl prost::Message,
) -> skylight_proto::greenlight::PendingRequest {
    signed_request_at(seed, path, message, now_ms())
}

use crate::signed_request::now_ms;

/// As [`signed_request`], stamped `timestamp` (ms).
fn signed_request_at(
    seed: u8,
    path: &str,
    message: impl prost::Message,
    timestamp: u64,
) -> skylight_proto::greenlight::PendingRequest {
    use base64::Engine;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let frame = crate::signed_request::grpc_frame(&message);
    let signed = crate::signed_request::signed_message(&frame, timestamp);
    let pubkey = key.public_key().as_ref().to_vec();
    let rune = crate::runes::RuneMaster::new(&HsmSecret::from_bytes([seed; 32]))
        .mint(&pubkey, &[])
        .unwrap();
    skylight_proto::greenlight::PendingRequest {
        request: frame,
        uri: path.into(),
        signature: key.sign(&rng, &signed).unwrap().as_ref().to_vec(),
        pubkey,
        timestamp,
        // As node-host keeps it: the `glrune` text decoded.
        rune: base64::engine::general_purpose::URL_SAFE
            .decode(rune)
            .unwrap(),
    }
}

#[test]
fn an_onchain_payment_is_approved_only_to_a_destination_and_amount_a_device_signed() {
    use skylight_proto::cln::{Amount as ClnAmount, AmountOrAll, WithdrawRequest, amount_or_all};
    use vls_protocol_signer::approver::{Approve, NegativeApprover};
    let asked = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
    let other = "bcrt1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qzf4jry";
    let withdraw = |dest: &str, sat: u64| WithdrawRequest {
        destination: dest.into(),
        satoshi: Some(AmountOrAll {
            value: Some(amount_or_all::Value::Amount(ClnAmount { msat: sat * 1000 })),
        }),
        ..Default::default()
    };
    let approver_spent = |requests: Vec<skylight_proto::greenlight::PendingRequest>,
                          spent: &std::collections::HashSet<[u8; 32]>| {
        approvals::RequestApprover::new(
            approvals::Approvals::from_requests(
                &requests,
                Network::Regtest,
                &approvals::Authority {
                    runes: &crate::runes::RuneMaster::new(&HsmSecret::from_bytes([5; 32])),
                    revoked: &super::revoked::RevokedKeys::in_memory(),
                },
                now_ms(),
                |id| spent.contains(id),
            ),
            Arc::new(NegativeApprover()),
        )
    };
    let approver = |requests: Vec<skylight_proto::greenlight::PendingRequest>| {
        approver_spent(requests, &std::collections::HashSet::new())
    };
    let paying = |dest: &str, sat: u64| bitcoin::Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![],
        output: vec![bitcoin::TxOut {
            value: bitcoin::Amount::from_sat(sat),
            script_pubkey: dest
                .parse::<bitcoin::Address<_>>()
                .unwrap()
                .assume_checked()
                .script_pubkey(),
        }],
    };
    let signed = vec![signed_request(
        5,
        approvals::WITHDRAW_PATH,
        withdraw(asked, 30_000),
    )];
    assert!(approver(signed.clone()).approve_onchain(&paying(asked, 30_000), &[], &[0]));
    assert!(!approver(signed.clone()).approve_onchain(&paying(other, 30_000), &[], &[0]));
    assert!(!approver(signed.clone()).approve_onchain(&paying(asked, 31_000), &[], &[0]));
    assert!(!approver(vec![]).approve_onchain(&paying(asked, 30_000), &[], &[0]));
    // Altered after signing: ignored.
    let mut altered = signed[0].clone();
    altered.request = signed_request(5, approvals::WITHDRAW_PATH, withdraw(other, 30_000)).request;
    assert!(!approver(vec![altered]).approve_onchain(&paying(other, 30_000), &[], &[0]));

    // One request approves one output: two outputs alike need two requests (the same one
    // shipped twice counts once).
    let mut twice = paying(asked, 30_000);
    twice.output.push(twice.output[0].clone());
    let doubled = vec![signed[0].clone(), signed[0].clone()];
    assert!(!approver(doubled).approve_onchain(&twice, &[], &[0, 1]));
    let two = vec![
        signed[0].clone(),
        signed_request(5, approvals::WITHDRAW_PATH, withdraw(asked, 30_000)),
    ];
    assert!(approver(two).approve_onchain(&twice, &[], &[0, 1]));

    // A request that approved a spend is told as used, and approves no other.
    let a = approver(signed.clone());
    assert!(a.approve_onchain(&paying(asked, 30_000), &[], &[0]));
    let used: std::collections::HashSet<[u8; 32]> =
        a.used.lock().unwrap().iter().map(|(id, _)| *id).collect();
    assert_eq!(used, [approvals::request_id(&signed[0])].into());
    assert!(!approver_spent(signed.clone(), &used).approve_onchain(
        &paying(asked, 30_000),
        &[],
        &[0]
    ));
}

#[test]
fn approvals_spent_are_kept_across_a_restart_and_forgotten_past_their_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("marks.json");
    {
        let mut m = Watermarks::open(&path).unwrap();
        m.spend(&[([1; 32], 1_000), ([2; 32], 9_000)], 0).unwrap();
    }
    let mut m = Watermarks::open(&path).unwrap();
    assert!(m.is_spent(&[1; 32]) && m.is_spent(&[2; 32]) && !m.is_spent(&[3; 32]));
    m.spend(&[([3; 32], 10_000)], 5_000).unwrap();
    let m = Watermarks::open(&path).unwrap();
    assert!(!m.is_spent(&[1; 32]), "past its window");
    assert!(m.is_spent(&[2; 32]) && m.is_spent(&[3; 32]));
}

#[test]
fn a_device_stopped_before_the_node_stored_its_answer_sends_its_copy_again_instead_of_refusing() {
    let secret = HsmSecret::from_bytes([0x34; 32]);
    let dir = tempfile::tempdir().unwrap();
    let marks = dir.path().join("marks.json");
    // The device answered with "k" at version 5, and stopped before the node stored it.
    {
        let mut m = Watermarks::open(&marks).unwrap();
        m.raise(
            [("k".to_string(), 5)],
            &[("k".to_string(), 5, b"\"five\"".to_vec())],
        )
        .unwrap();
    }
    // Restarted, it is offered the node's older copy: missed, not rolled back.
    let mut s = Signer::new(&secret, Network::Regtest)
        .with_watermarks(&marks)
        .unwrap();
    let mut older = SignerStateEntry {
        version: 4,
        key: "k".into(),
        value: b"\"four\"".to_vec(),
        signature: vec![],
    };
    s.state_key.sign(&mut older);
    let mut req = init_request(1);
    req.signer_state = vec![older];
    let resp = s.handle(&req);
    assert!(resp.error.is_empty(), "{}", resp.error);
    let sent = resp.signer_state.iter().find(|e| e.key == "k").unwrap();
    assert_eq!((sent.version, sent.value.as_slice()), (5, &b"\"five\""[..]));
    assert!(s.state_key.verify(sent), "our copy goes to the node signed");
}

fn node_request(id: u32, message: impl SerBolt) -> HsmRequest {
    HsmRequest {
        request_id: id,
        raw: message.as_vec(),
        ..Default::default()
    }
}

fn new_channel(id: u32, dbid: u64) -> HsmRequest {
    node_request(
        id,
        vls_protocol::msgs::NewChannel {
            peer_id: PubKey([0; 33]),
            dbid,
        },
    )
}

fn basepoints(id: u32, dbid: u64) -> HsmRequest {
    node_request(
        id,
        vls_protocol::msgs::GetChannelBasepoints {
            node_id: PubKey([0; 33]),
            dbid,
        },
    )
}

#[test]
fn the_handler_is_kept_between_requests_but_not_across_an_init() {
    let mut s = Signer::new(&HsmSecret::from_bytes([11; 32]), Network::Regtest);
    assert!(s.handle(&init_request(1)).error.is_empty());
    assert!(s.kept.is_none(), "an init's handler is never kept");
    let r = s.handle(&new_channel(2, 1));
    assert!(r.error.is_empty(), "{}", r.error);
    assert!(s.kept.is_some());
    let r = s.handle(&basepoints(3, 1));
    assert!(
        r.error.is_empty(),
        "the kept handler knows the channel: {}",
        r.error
    );
    assert!(s.handle(&init_request(4)).error.is_empty());
    assert!(s.kept.is_none());
}

#[test]
fn a_kept_handler_gives_way_to_newer_state_from_the_node_and_to_a_refusal() {
    let secret = HsmSecret::from_bytes([12; 32]);
    let mut phone = Signer::new(&secret, Network::Regtest);
    let created = phone.handle(&init_request(1));
    phone.acknowledged(&created.signer_state);
    assert!(phone.handle(&new_channel(2, 1)).error.is_empty());
    assert!(phone.kept.is_some());

    // Another device of the tenant creates a channel; the node ships its state to the
    // phone with the next request, which must see that channel.
    let mut laptop = Signer::new(&secret, Network::Regtest);
    let mut req = init_request(3);
    req.signer_state = created.signer_state.clone();
    assert!(laptop.handle(&req).error.is_empty());
    let made = laptop.handle(&new_channel(4, 2));
    assert!(made.error.is_empty(), "{}", made.error);
    let mut req = basepoints(5, 2);
    req.signer_state = made.signer_state.clone();
    let r = phone.handle(&req);
    assert!(
        r.error.is_empty(),
        "the newer state's channel is known: {}",
        r.error
    );

    // A refusal leaves no handler behind.
    let r = phone.handle(&basepoints(6, 99));
    assert!(!r.error.is_empty());
    assert!(phone.kept.is_none());
}
