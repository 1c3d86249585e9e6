//! The channel signer against a scripted signer on the stage: what it sends, what it keeps,
//! and what it does when no signer is there. (Against the real VLS signer, every channel of
//! the end-to-end tests runs through it.)

use std::sync::Arc;
use std::time::Duration;

use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning::chain::transaction::OutPoint;
use lightning::ln::chan_utils::{
    ChannelPublicKeys, ChannelTransactionParameters, CommitmentTransaction,
    CounterpartyChannelTransactionParameters, HolderCommitmentTransaction,
};
use lightning::ln::channel_keys::{DelayedPaymentBasepoint, HtlcBasepoint, RevocationBasepoint};
use lightning::sign::ChannelSigner as _;
use lightning::types::features::ChannelTypeFeatures;
use lightning::util::ser::Writeable;
use lightning_signer::bitcoin;
use lightning_signer::channel::ChannelId;
use lightning_signer::lightning;
use lightning_signer::util::INITIAL_COMMITMENT_NUMBER;
use vls_protocol::model::{DisclosedSecret, PubKey};
use vls_protocol::msgs::{self, Message, SerBolt};

use super::book::{ChannelBook, ChannelRecord};
use super::calls::Calls;
use super::messages::Destination;
use super::{ChannelSigner, Channels};
use crate::signer_link::stage::{Attachment, Stage};

const DBID: u64 = 7;

fn key(b: u8) -> PublicKey {
    PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[b; 32]).unwrap())
}

fn keys(b: u8) -> ChannelPublicKeys {
    ChannelPublicKeys {
        funding_pubkey: key(b),
        revocation_basepoint: RevocationBasepoint(key(b + 1)),
        payment_point: key(b + 2),
        delayed_payment_basepoint: DelayedPaymentBasepoint(key(b + 3)),
        htlc_basepoint: HtlcBasepoint(key(b + 4)),
    }
}

fn params() -> ChannelTransactionParameters {
    ChannelTransactionParameters {
        holder_pubkeys: keys(1),
        holder_selected_contest_delay: 144,
        is_outbound_from_holder: true,
        counterparty_parameters: Some(CounterpartyChannelTransactionParameters {
            pubkeys: keys(11),
            selected_contest_delay: 144,
        }),
        funding_outpoint: Some(OutPoint {
            txid: bitcoin::Txid::from_raw_hash(bitcoin::hashes::Hash::all_zeros()),
            index: 0,
        }),
        splice_parent_funding_txid: None,
        channel_type_features: ChannelTypeFeatures::only_static_remote_key(),
        channel_value_satoshis: 100_000,
    }
}

/// Our commitment `n` (VLS numbering), as the counterparty signed it.
fn holder_commitment(n: u64) -> HolderCommitmentTransaction {
    let secp = Secp256k1::new();
    let p = params();
    let tx = CommitmentTransaction::new(
        INITIAL_COMMITMENT_NUMBER - n,
        &key(40),
        60_000,
        40_000,
        253,
        Vec::new(),
        &p.as_holder_broadcastable(),
        &secp,
    );
    let sig = secp.sign_ecdsa(
        &bitcoin::secp256k1::Message::from_digest([1; 32]),
        &SecretKey::from_slice(&[11; 32]).unwrap(),
    );
    HolderCommitmentTransaction::new(tx, sig, Vec::new(), &key(1), &key(11))
}

struct Fixture {
    _dir: tempfile::TempDir,
    kv: Arc<dyn crate::store::kv::NodeKv>,
    stage: Arc<Stage>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Fixture {
            kv: crate::store::kv::redb::RedbKv::shared(&dir.path().join("channels.redb")).unwrap(),
            _dir: dir,
            stage: Arc::new(Stage::new()),
        }
    }

    /// A node-host's channel signer for [`DBID`], set up on the signer already (as after
    /// a restart): a new book over the same file.
    fn signer(&self) -> (Arc<Channels>, ChannelSigner) {
        let book = ChannelBook::open(self.kv.clone()).unwrap();
        let setup = super::messages::setup(&params()).unwrap().as_vec();
        book.create(
            DBID,
            ChannelRecord {
                basepoints: hex::encode(keys(1).encode()),
                setup: Some(hex::encode(setup)),
                ..Default::default()
            },
        )
        .unwrap();
        let xpub = bitcoin::bip32::Xpub::from_priv(
            &Secp256k1::new(),
            &bitcoin::bip32::Xpriv::new_master(bitcoin::Network::Regtest, &[3; 32]).unwrap(),
        );
        let channels = Arc::new(Channels::new(
            Calls::new(self.stage.clone(), Duration::from_secs(5)),
            book,
            Destination::new(&xpub).unwrap(),
        ));
        let keys_id = ChannelId::new_from_oid(DBID).ldk_channel_keys_id();
        let signer = channels.derive(keys_id).unwrap();
        (channels, signer)
    }
}

impl Fixture {
    /// Attaches a [`scripted`] signer: its session, and its thread.
    fn attach_scripted(&self) -> (u64, std::thread::JoinHandle<Vec<Message>>) {
        let a = self.stage.attach();
        (a.session, scripted(self.stage.clone(), a))
    }
}

/// Answers every request on `a` as VLS would, recording what it was asked.
fn scripted(stage: Arc<Stage>, mut a: Attachment) -> std::thread::JoinHandle<Vec<Message>> {
    std::thread::spawn(move || {
        let mut asked = Vec::new();
        while let Some(staged) = a.requests.blocking_recv() {
            let message = msgs::from_vec(staged.raw.clone()).unwrap();
            let reply = match &message {
                Message::ValidateCommitmentTx2(_) => msgs::ValidateCommitmentTxReply {
                    old_commitment_secret: Some(DisclosedSecret([5; 32])),
                    next_per_commitment_point: PubKey(key(50).serialize()),
                }
                .as_vec(),
                Message::GetPerCommitmentPoint2(_) => msgs::GetPerCommitmentPoint2Reply {
                    point: PubKey(key(51).serialize()),
                }
                .as_vec(),
                other => panic!("unexpected request {other:?}"),
            };
            asked.push(message);
            stage.respond(staged.request_id, Ok(reply));
        }
        asked
    })
}

#[test]
fn after_a_restart_a_validation_asks_the_signer_and_its_reply_serves_the_revocation() {
    let f = Fixture::new();
    // A restarted node: nothing in memory says the channel is set up, its record does.
    let (_channels, signer) = f.signer();
    let (session, answerer) = f.attach_scripted();

    signer
        .validate_holder_commitment(&holder_commitment(4), Vec::new())
        .unwrap();
    // The secret of commitment 3 came with the reply: no second request for it.
    let secret = signer
        .release_commitment_secret(INITIAL_COMMITMENT_NUMBER - 3)
        .unwrap();
    assert_eq!(secret, [5; 32]);
    // The point after it too; one beyond is asked for.
    let secp = Secp256k1::new();
    assert_eq!(
        signer
            .get_per_commitment_point(INITIAL_COMMITMENT_NUMBER - 5, &secp)
            .unwrap(),
        key(50)
    );
    assert_eq!(
        signer
            .get_per_commitment_point(INITIAL_COMMITMENT_NUMBER - 6, &secp)
            .unwrap(),
        key(51)
    );

    f.stage.detach(session);
    let asked = answerer.join().unwrap();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(
        matches!(&asked[0], Message::ValidateCommitmentTx2(v) if v.commitment_number == 4),
        "{:?}",
        asked[0]
    );
    assert!(matches!(&asked[1], Message::GetPerCommitmentPoint2(p) if p.commitment_number == 6));
}

#[test]
fn with_no_signer_a_validation_is_kept_sent_first_after_a_restart_and_holds_what_depends_on_it() {
    let f = Fixture::new();
    {
        let (channels, signer) = f.signer();
        // No signer: LDK hears "validated" (an Err would close the channel)...
        signer
            .validate_holder_commitment(&holder_commitment(4), Vec::new())
            .unwrap();
        // ...but the secret it releases, and points beyond it, wait for the signer.
        assert!(
            signer
                .release_commitment_secret(INITIAL_COMMITMENT_NUMBER - 3)
                .is_err()
        );
        assert!(
            signer
                .get_per_commitment_point(INITIAL_COMMITMENT_NUMBER - 6, &Secp256k1::new())
                .is_err()
        );
        assert!(channels.take_owed_unblock(), "LDK is owed a retry");
        // node-host stops with it unanswered.
        f.stage.close();
    }
    let f = Fixture {
        stage: Arc::new(Stage::new()),
        ..f
    };
    let (_channels, signer) = f.signer();
    let (session, answerer) = f.attach_scripted();
    // LDK retries the revocation: the kept validation goes first, and its reply serves it.
    let secret = signer
        .release_commitment_secret(INITIAL_COMMITMENT_NUMBER - 3)
        .unwrap();
    assert_eq!(secret, [5; 32]);
    let record = signer.record().unwrap();
    assert!(record.unanswered_validations.is_empty(), "{record:?}");
    f.stage.detach(session);
    let asked = answerer.join().unwrap();
    assert!(
        matches!(asked.as_slice(), [Message::ValidateCommitmentTx2(v)] if v.commitment_number == 4),
        "{asked:?}"
    );
}

#[test]
fn a_validation_sends_the_point_two_ahead_behind_it_and_ldk_asking_later_needs_no_signer() {
    let f = Fixture::new();
    let (_channels, signer) = f.signer();
    let (session, answerer) = f.attach_scripted();
    signer
        .validate_holder_commitment(&holder_commitment(4), Vec::new())
        .unwrap();
    // The point went right behind the validation; once it is answered the signer may go.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while f.stage.pending() > 0 {
        assert!(std::time::Instant::now() < deadline, "the point was never sent");
        std::thread::sleep(Duration::from_millis(1));
    }
    f.stage.detach(session);
    let asked = answerer.join().unwrap();
    assert!(
        matches!(
            asked.as_slice(),
            [Message::ValidateCommitmentTx2(v), Message::GetPerCommitmentPoint2(p)]
                if v.commitment_number == 4 && p.commitment_number == 6
        ),
        "{asked:?}"
    );
    // LDK asks for it only now, with no signer attached: the answer is already in.
    assert_eq!(
        signer
            .get_per_commitment_point(INITIAL_COMMITMENT_NUMBER - 6, &Secp256k1::new())
            .unwrap(),
        key(51)
    );
}

#[test]
fn a_counterparty_revocation_is_kept_and_sent_without_waiting_then_taken_in_by_the_next_request() {
    let f = Fixture::new();
    let (_channels, signer) = f.signer();
    let mut a = f.stage.attach();
    // A signer is attached but has not answered: LDK is not held up for it.
    signer
        .validate_counterparty_revocation(
            INITIAL_COMMITMENT_NUMBER - 2,
            &SecretKey::from_slice(&[9; 32]).unwrap(),
        )
        .unwrap();
    assert_eq!(signer.record().unwrap().unanswered_validations.len(), 1);
    let staged = a.requests.try_recv().expect("sent at once");
    assert!(matches!(
        msgs::from_vec(staged.raw.clone()).unwrap(),
        Message::ValidateRevocation(r) if r.commitment_number == 2
    ));
    f.stage
        .respond(staged.request_id, Ok(msgs::ValidateRevocationReply {}.as_vec()));
    // The channel's next request takes its answer in, and does not send it again.
    let session = a.session;
    let answerer = scripted(f.stage.clone(), a);
    signer
        .validate_holder_commitment(&holder_commitment(4), Vec::new())
        .unwrap();
    assert!(signer.record().unwrap().unanswered_validations.is_empty());
    f.stage.detach(session);
    let asked = answerer.join().unwrap();
    assert!(
        asked
            .iter()
            .all(|m| !matches!(m, Message::ValidateRevocation(_))),
        "{asked:?}"
    );
}
