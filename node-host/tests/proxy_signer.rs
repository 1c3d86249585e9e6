//! LDK's signer traits, through vls-protocol-client, over the stage, to the real signer core
//! (VLS) with the signer state kept by node-host: the path every signature will take.

use std::sync::Arc;
use std::time::Duration;

use bitcoin::Network;
use lightning_signer::lightning::sign::{ChannelSigner, NodeSigner, Recipient, SignerProvider};
use skylight_client::keys::NodeKeys;
use skylight_client::secret::HsmSecret;
use skylight_node_host::signer_link::stage::Stage;
use skylight_node_host::signer_link::transport::StageTransport;

use skylight_node_host::store::kv::redb::RedbKv;
use skylight_test_support::in_process::{Linked, linked, remote_keys};

#[test]
fn ldk_signer_calls_cross_the_stage_to_vls_and_the_state_lands_in_node_host() {
    let secret = HsmSecret::from_bytes([0x41; 32]);
    let Linked {
        dir: _dir,
        kv,
        stage,
        state,
        session,
        signer,
        ..
    } = linked(&secret);
    let keys = remote_keys(&stage, Duration::from_secs(30), kv.clone());
    // The node id LDK sees is the signer's (VLS native derivation, as Greenlight's).
    let expected = NodeKeys::derive(&secret, Network::Regtest).node_id;
    assert_eq!(keys.get_node_id(Recipient::Node).unwrap(), expected);
    assert!(
        !state.snapshot().is_empty(),
        "the new node's state is kept by node-host"
    );

    // A channel signer: NewChannel + GetChannelBasepoints, then a per-commitment point.
    let keys_id = keys.generate_channel_keys_id(false, 0);
    let channel = keys.derive_channel_signer(keys_id);
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let point = channel
        .get_per_commitment_point((1 << 48) - 1, &secp)
        .unwrap();
    assert_ne!(point, expected);
    let channel_entries = state
        .snapshot()
        .into_iter()
        .filter(|e| e.key.starts_with("channel"))
        .count();
    assert!(
        channel_entries > 0,
        "the channel's enforcement state is kept by node-host"
    );

    stage.detach(session);
    assert!(signer.join().unwrap() >= 4);
}

#[test]
fn with_no_signer_a_call_waits_its_deadline_then_fails_without_a_panic() {
    let stage = Arc::new(Stage::new());
    let transport = StageTransport::new(stage.clone(), Duration::from_millis(50));
    let result: Result<vls_protocol::msgs::HsmdInit2Reply, _> = vls_protocol_client::node_call(
        &transport,
        vls_protocol::msgs::HsmdInit2 {
            derivation_style: 0,
            network_name: vls_protocol::serde_bolt::WireString(b"regtest".to_vec()),
            dev_seed: None,
            dev_allowlist: vls_protocol::serde_bolt::Array::new(),
        },
    );
    assert_eq!(
        result.unwrap_err(),
        vls_protocol_client::Error::TransportTransient
    );
}

#[test]
fn remote_keys_sign_with_the_signer_keep_the_channel_counter_fail_softly_without_it_and_ecdh_waits_for_it()
 {
    use bitcoin::hashes::Hash;
    use bitcoin::secp256k1::{Message, Scalar, SecretKey, ecdh::SharedSecret};
    use lightning_signer::lightning::sign::EntropySource;
    use lightning_signer::lightning_invoice::{Currency, InvoiceBuilder};

    let secret = HsmSecret::from_bytes([0x42; 32]);
    let Linked {
        dir,
        kv,
        stage,
        state,
        session,
        signer,
    } = linked(&secret);
    let keys = remote_keys(&stage, Duration::from_secs(30), kv.clone());
    let node_id = keys.get_node_id(Recipient::Node).unwrap();
    let secp = bitcoin::secp256k1::Secp256k1::new();

    // ECDH with and without a tweak, checked from the other side of the exchange.
    let other = SecretKey::from_slice(&[3; 32]).unwrap();
    let other_pub = other.public_key(&secp);
    let shared = keys.ecdh(Recipient::Node, &other_pub, None).unwrap();
    assert_eq!(shared, SharedSecret::new(&node_id, &other));
    let tweak = Scalar::from_be_bytes([9; 32]).unwrap();
    let tweaked = keys
        .ecdh(Recipient::Node, &other_pub, Some(&tweak))
        .unwrap();
    assert_eq!(
        tweaked,
        SharedSecret::new(&node_id, &other.mul_tweak(&tweak).unwrap())
    );
    assert!(keys.ecdh(Recipient::PhantomNode, &other_pub, None).is_err());

    // An invoice signed by the signer recovers to the node id.
    let raw = InvoiceBuilder::new(Currency::Regtest)
        .description("coffee".into())
        .payment_hash(bitcoin::hashes::sha256::Hash::from_slice(&[1; 32]).unwrap())
        .payment_secret(lightning_signer::lightning::types::payment::PaymentSecret(
            [2; 32],
        ))
        .current_timestamp()
        .min_final_cltv_expiry_delta(18)
        .amount_milli_satoshis(10_000)
        .build_raw()
        .unwrap();
    let sig = keys.sign_invoice(&raw, Recipient::Node).unwrap();
    let hash = Message::from_digest(raw.signable_hash());
    assert_eq!(secp.recover_ecdsa(&hash, &sig).unwrap(), node_id);

    // Entropy is local: no signer round trip.
    let pending_before = stage.pending();
    assert_ne!(
        keys.get_secure_random_bytes(),
        keys.get_secure_random_bytes()
    );
    assert_eq!(stage.pending(), pending_before);

    // The channel counter survives a restart: never the same channel keys twice.
    let first = keys.generate_channel_keys_id(false, 0);
    let second = keys.generate_channel_keys_id(false, 0);
    assert_ne!(first, second);
    // The same signer, a restarted node: a new client on the same store.
    let restarted = remote_keys(&stage, Duration::from_secs(30), kv);
    let third = restarted.generate_channel_keys_id(false, 0);
    assert!(
        third != first && third != second,
        "a restarted node continues the counter"
    );

    // Keys whose calls wait two seconds at most.
    let impatient = remote_keys(
        &stage,
        Duration::from_secs(2),
        RedbKv::shared(&dir.path().join("other.redb")).unwrap(),
    );

    // The signer goes away: calls fail after their deadline; the node does not panic.
    stage.detach(session);
    signer.join().unwrap();
    assert!(impatient.sign_invoice(&raw, Recipient::Node).is_err());
    // But ECDH, which LDK unwraps where it decodes an HTLC's onion, waits past its
    // deadline for a signer, and has its answer when one attaches.
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| impatient.ecdh(Recipient::Node, &other_pub, None));
        std::thread::sleep(Duration::from_secs(3));
        assert!(!waiting.is_finished(), "ECDH waits for the signer");
        let (session, _signer) =
            skylight_test_support::in_process::attach_signer(stage.clone(), state.clone(), secret);
        assert_eq!(
            waiting.join().unwrap().unwrap(),
            SharedSecret::new(&node_id, &other)
        );
        stage.detach(session);
    });
}
