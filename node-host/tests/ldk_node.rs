//! An LDK channel manager whose keys are all on the signer: it makes a BOLT11 invoice that
//! the (real, VLS) signer signs through the stage.

use std::sync::Arc;
use std::time::Duration;

use bitcoin::Network;
use lightning_signer::lightning::chain::BestBlock;
use lightning_signer::lightning::ln::channelmanager::Bolt11InvoiceParameters;
use lightning_signer::lightning_invoice::{Bolt11InvoiceDescription, Description};
use skylight_client::keys::NodeKeys;
use skylight_client::secret::HsmSecret;
use skylight_node_host::node::ldk::{
    Broadcaster, FeeRates, Parts, has_node, new_node, restore_node,
};

use skylight_node_host::store::ldk_store::LdkStore;
use skylight_test_support::in_process::{Linked, linked, remote_keys};

#[test]
fn the_channel_manager_makes_an_invoice_the_signer_signs() {
    let secret = HsmSecret::from_bytes([0x44; 32]);
    let Linked {
        dir: _dir,
        kv,
        stage,
        session,
        signer,
        ..
    } = linked(&secret);
    let keys = Arc::new(remote_keys(&stage, Duration::from_secs(30), kv.clone()));
    let (broadcaster, _queue) = Broadcaster::new();
    let store = Arc::new(LdkStore::on(kv));
    let parts = |keys| Parts {
        network: Network::Regtest,
        keys,
        store: store.clone(),
        fees: Arc::new(FeeRates::flat(1000)),
        broadcaster: Arc::new(broadcaster),
    };
    assert!(!has_node(&*store).unwrap());
    let node = new_node(
        parts(keys.clone()),
        BestBlock::from_network(Network::Regtest),
        1_795_000_000,
    )
    .unwrap();
    assert!(has_node(&*store).unwrap(), "a new node is stored at once");
    let expected = NodeKeys::derive(&secret, Network::Regtest).node_id;
    assert_eq!(node.channel_manager.get_our_node_id(), expected);

    let invoice = node
        .channel_manager
        .create_bolt11_invoice(Bolt11InvoiceParameters {
            amount_msats: Some(21_000),
            description: Bolt11InvoiceDescription::Direct(
                Description::new("coffee".into()).unwrap(),
            ),
            invoice_expiry_delta_secs: Some(3600),
            ..Default::default()
        })
        .expect("an invoice");
    assert_eq!(invoice.recover_payee_pub_key(), expected);
    assert_eq!(invoice.amount_milli_satoshis(), Some(21_000));
    assert!(invoice.to_string().starts_with("lnbcrt210n1"), "{invoice}");

    // Read back from the store, it is the same node.
    let (broadcaster, _queue) = Broadcaster::new();
    let restored = restore_node(Parts {
        network: Network::Regtest,
        keys,
        store: store.clone(),
        fees: Arc::new(FeeRates::flat(1000)),
        broadcaster: Arc::new(broadcaster),
    })
    .unwrap();
    assert_eq!(
        restored.manager_block,
        BestBlock::from_network(Network::Regtest).block_hash
    );
    assert!(restored.monitors.is_empty());
    let node = restored.finish().unwrap();
    assert_eq!(node.channel_manager.get_our_node_id(), expected);

    stage.detach(session);
    signer.join().unwrap();
}
