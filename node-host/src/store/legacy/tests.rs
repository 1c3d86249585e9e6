use std::sync::Arc;

use redb::Database;

use super::*;
use crate::store::invoices::Invoices;
use crate::store::kv::redb::RedbKv;
use crate::store::outbox::Outbox;
use crate::store::payments::Payments;
use crate::store::signer_state::SignerState;

/// A node directory as node-hosts of before left it.
fn old_directory(dir: &NodeDir) {
    let write = |path: PathBuf, f: &dyn Fn(&redb::WriteTransaction)| {
        let db = Database::create(path).unwrap();
        let txn = db.begin_write().unwrap();
        f(&txn);
        txn.commit().unwrap();
    };
    write(dir.signer_state(), &|t| {
        // version 1, no signature, value "v"
        let mut entry = 1u64.to_be_bytes().to_vec();
        entry.extend_from_slice(&0u16.to_be_bytes());
        entry.extend_from_slice(b"v");
        t.open_table(SIGNER_STATE)
            .unwrap()
            .insert("nodes/a", entry.as_slice())
            .unwrap();
        t.open_table(STATE_KEY)
            .unwrap()
            .insert(STATE_KEY_ROW, [7u8; 97].as_slice())
            .unwrap();
    });
    write(dir.channel_signers(), &|t| {
        t.open_table(CHANNEL_SIGNERS)
            .unwrap()
            .insert(3, br#"{"basepoints":"00"}"#.as_slice())
            .unwrap();
    });
    write(dir.invoices(), &|t| {
        let invoice = br#"{"label":"l","bolt11":"lnbcrt1","payment_hash":"0101010101010101010101010101010101010101010101010101010101010101","amount_msat":1000,"description":"d","expires_at":10,"created_index":1,"preimage":null,"paid":null}"#;
        t.open_table(INVOICES_BY_LABEL)
            .unwrap()
            .insert("l", invoice.as_slice())
            .unwrap();
        t.open_table(INVOICE_LABELS_BY_HASH)
            .unwrap()
            .insert(&[1u8; 32], "l")
            .unwrap();
        t.open_table(INVOICE_COUNTERS)
            .unwrap()
            .insert("created", 1)
            .unwrap();
    });
    write(dir.payments(), &|t| {
        t.open_table(PAYMENT_COUNTERS)
            .unwrap()
            .insert("created", 4)
            .unwrap();
    });
    write(dir.outbox(), &|t| {
        let event = br#"{"seq":2,"event_id":"9","event_type":"signer_needed","timestamp":1,"fields":{}}"#;
        t.open_table(OUTBOX_TABLE)
            .unwrap()
            .insert(2, event.as_slice())
            .unwrap();
        t.open_table(OUTBOX_RAISED_TABLE)
            .unwrap()
            .insert("once", "8")
            .unwrap();
        t.open_table(OUTBOX_COUNTERS)
            .unwrap()
            .insert("seq", 2)
            .unwrap();
    });
    std::fs::write(dir.next_dbid(), "5").unwrap();
    std::fs::write(dir.receive_auth_key(), [9u8; 32]).unwrap();
    std::fs::write(dir.p2p_addr(), "127.0.0.1:9735").unwrap();
}

#[test]
fn an_older_node_directory_is_taken_into_the_store_whole_and_its_files_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = NodeDir::new(tmp.path());
    old_directory(&dir);
    let kv: Arc<dyn NodeKv> = Arc::new(RedbKv::open_node(&dir).unwrap());
    take_in(&dir, &*kv).unwrap();
    assert!(present(&dir).is_empty(), "the older files are gone");

    let state = SignerState::open(kv.clone()).unwrap();
    assert_eq!(state.get("nodes/a").unwrap().value, b"v");
    assert_eq!(state.pinned_key().unwrap().unwrap().key, vec![7; 33]);
    let invoices = Invoices::open(kv.clone());
    assert_eq!(invoices.by_hash(&[1; 32]).unwrap().unwrap().label, "l");
    assert_eq!(invoices.next_index().unwrap(), 2);
    let payments = Payments::open(kv.clone());
    let p = payments
        .insert(
            [2; 32],
            crate::store::payments::Payment {
                bolt11: String::new(),
                payment_hash: String::new(),
                destination: String::new(),
                amount_msat: 1,
                amount_sent_msat: None,
                created_at: 0,
                completed_at: None,
                preimage: None,
                created_index: 0,
                status: crate::store::payments::PaymentStatus::Pending,
                failure: None,
            },
        )
        .unwrap();
    assert_eq!(p.created_index, 5, "numbering goes on from the older counter");
    let outbox = Outbox::open(kv.clone()).unwrap();
    assert_eq!(*outbox.watch().borrow(), 2);
    assert_eq!(outbox.pending(10).unwrap()[0].event_id, "9");
    assert_eq!(
        outbox
            .raise(Some("once"), "invoice_payment", serde_json::json!({}))
            .unwrap(),
        None,
        "an event raised once before is not raised again"
    );
    assert_eq!(
        kv.read(COUNTERS.primary, COUNTERS.secondary, CHANNELS_CREATED)
            .unwrap()
            .unwrap(),
        4u64.to_be_bytes(),
        "the next channel id is still 5"
    );
    assert_eq!(
        kv.read(NODE.primary, NODE.secondary, RECEIVE_AUTH_KEY)
            .unwrap()
            .unwrap(),
        [9; 32]
    );
    let records = crate::signer_link::channel::book::ChannelBook::open(kv.clone()).unwrap();
    assert_eq!(records.get(3).unwrap().basepoints, "00");
}

#[test]
fn older_files_left_behind_after_a_take_in_are_removed_unread() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = NodeDir::new(tmp.path());
    std::fs::write(dir.next_dbid(), "5").unwrap();
    let kv = RedbKv::open_node(&dir).unwrap();
    take_in(&dir, &kv).unwrap();
    let mut batch = crate::store::kv::Batch::new(&kv);
    assert_eq!(batch.next(COUNTERS, CHANNELS_CREATED).unwrap(), 5);
    batch.commit(Durability::Immediate).unwrap();
    // As if node-host had died between the commit and the removal.
    std::fs::write(dir.next_dbid(), "5").unwrap();
    take_in(&dir, &kv).unwrap();
    assert!(!dir.next_dbid().exists());
    assert_eq!(
        kv.read(COUNTERS.primary, COUNTERS.secondary, CHANNELS_CREATED)
            .unwrap()
            .unwrap(),
        5u64.to_be_bytes(),
        "the newer count is kept"
    );
}
