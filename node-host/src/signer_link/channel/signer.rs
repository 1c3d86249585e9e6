//! One channel's signer, as LDK sees it.

use std::sync::Arc;

use bitcoin::secp256k1::{All, PublicKey, Secp256k1, SecretKey, ecdsa::Signature};
use bitcoin::{Transaction, Txid};
use lightning::ln::chan_utils::{
    ChannelPublicKeys, ChannelTransactionParameters, ClosingTransaction, CommitmentTransaction,
    HTLCOutputInCommitment, HolderCommitmentTransaction,
};
use lightning::ln::msgs::UnsignedChannelAnnouncement;
use lightning::sign::ecdsa::EcdsaChannelSigner;
use lightning::sign::{ChannelSigner as LdkChannelSigner, HTLCDescriptor};
use lightning::types::payment::PaymentPreimage;
use lightning::util::ser::{Writeable, Writer};
use lightning_signer::bitcoin;
use lightning_signer::channel::ChannelId;
use lightning_signer::lightning;
use lightning_signer::util::INITIAL_COMMITMENT_NUMBER;
use vls_protocol::model::{DisclosedSecret, PubKey};
use vls_protocol::msgs::{
    DeBolt, GetPerCommitmentPoint, GetPerCommitmentPoint2, GetPerCommitmentPoint2Reply,
    GetPerCommitmentPointReply, SerBolt, SetupChannelReply, SignAnyLocalHtlcTx,
    SignAnyPenaltyToUs, SignAnyRemoteHtlcToUs, SignChannelAnnouncement,
    SignChannelAnnouncementReply, SignCommitmentTxReply, SignCommitmentTxWithHtlcsReply,
    SignLocalCommitmentTx2, SignMutualCloseTx2, SignRemoteCommitmentTx2, SignTxReply,
    ValidateCommitmentTx2, ValidateCommitmentTxReply, ValidateRevocation,
};
use vls_protocol::serde_bolt::{Array, ArrayBE, WithSize};

use super::Channels;
use super::calls::Outcome;
use super::messages::{self, Destination};
use crate::signer_link::stage::Ticket;

/// A channel's signer. Clones (LDK's manager and monitor each hold one) share everything.
#[derive(Clone)]
pub struct ChannelSigner {
    shared: Arc<Channels>,
    dbid: u64,
    keys: ChannelPublicKeys,
    /// Validations sent in this process and not yet answered, with their tickets.
    sent: Arc<std::sync::Mutex<Vec<(String, Ticket)>>>,
}

/// VLS numbers commitments up from 0; LDK down from 2^48 - 1.
fn vls_number(ldk_index: u64) -> u64 {
    INITIAL_COMMITMENT_NUMBER - ldk_index
}

impl ChannelSigner {
    pub(super) fn new(shared: Arc<Channels>, dbid: u64, keys: ChannelPublicKeys) -> Self {
        ChannelSigner {
            shared,
            dbid,
            keys,
            sent: Arc::default(),
        }
    }

    pub(super) fn record(&self) -> Option<super::book::ChannelRecord> {
        self.shared.book.get(self.dbid)
    }

    fn update(&self, change: impl FnOnce(&mut super::book::ChannelRecord)) -> Result<(), ()> {
        self.shared
            .book
            .update(self.dbid, change)
            .map(|_| ())
            .map_err(|e| tracing::error!(dbid = self.dbid, %e, "cannot store what the signer said"))
    }

    /// Keeps what the signer can tell again (a point, a secret): see `ChannelBook::note`.
    fn note(&self, change: impl FnOnce(&mut super::book::ChannelRecord)) {
        if let Err(e) = self.shared.book.note(self.dbid, change) {
            tracing::warn!(dbid = self.dbid, %e, "cannot keep what the signer said; it will be asked again");
        }
    }

    /// A channel request LDK retries: the reply, or `Err` with the unblock owed.
    fn pendable<T: SerBolt + std::fmt::Debug, R: DeBolt>(&self, message: T) -> Result<R, ()> {
        let what = format!("{message:?}");
        match self.shared.calls.pendable(Some(self.dbid), message.as_vec()) {
            Outcome::Answer(raw) => R::from_vec(raw).map_err(|e| {
                tracing::error!(dbid = self.dbid, ?e, "the signer's reply is unreadable");
            }),
            Outcome::Pending => {
                tracing::debug!(dbid = self.dbid, request = %short(&what), "waiting for a signer");
                self.shared.owe_unblock();
                Err(())
            }
            Outcome::Refused(why) => {
                tracing::warn!(dbid = self.dbid, %why, request = %short(&what), "the signer refused");
                Err(())
            }
        }
    }

    /// Sends the validations LDK took as done that the signer has not answered (after a
    /// restart: again), in order, and takes in the answers that have come: what the
    /// signer's reply tells (secret, point) is kept. With `wait`, waits for them while a
    /// signer is attached. `true` when none is left unanswered.
    fn settle(&self, wait: bool) -> bool {
        let Some(record) = self.record() else {
            return true;
        };
        if record.unanswered_validations.is_empty() {
            return true;
        }
        if record.setup.is_none() {
            // Held until the channel is set up on the signer (its first signature).
            return false;
        }
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        for hex_msg in &record.unanswered_validations {
            if sent.iter().any(|(h, _)| h == hex_msg) {
                continue;
            }
            let Ok(raw) = hex::decode(hex_msg) else {
                continue;
            };
            sent.push((hex_msg.clone(), self.shared.calls.submit(Some(self.dbid), raw)));
        }
        let mut answered = Vec::new();
        for (hex_msg, ticket) in sent.iter() {
            let answer = if wait {
                self.shared.calls.wait(ticket)
            } else {
                ticket.try_answer().filter(|a| {
                    !matches!(a, Err(crate::signer_link::stage::SignerError::Unavailable(_)))
                })
            };
            match answer {
                Some(answer) => answered.push((hex_msg.clone(), answer)),
                // Later ones are answered after this one, never before.
                None => break,
            }
        }
        for (hex_msg, answer) in &answered {
            sent.retain(|(h, _)| h != hex_msg);
            let raw = hex::decode(hex_msg).unwrap_or_default();
            match answer {
                Ok(reply) => {
                    if let Ok(v) = ValidateCommitmentTx2::from_vec(raw) {
                        self.keep_validated(v.commitment_number, reply);
                    }
                }
                Err(why) => tracing::error!(
                    dbid = self.dbid,
                    %why,
                    "the signer refused a validation LDK already acted on: this channel \
                     cannot sign its next states; close it with the peer's cooperation"
                ),
            }
        }
        let done: Vec<String> = answered.into_iter().map(|(h, _)| h).collect();
        let left = self
            .shared
            .book
            .update(self.dbid, |r| {
                r.unanswered_validations.retain(|h| !done.contains(h));
            })
            .map(|r| r.unanswered_validations.len())
            .unwrap_or(usize::MAX);
        left == 0
    }

    /// Keeps what a holder validation's reply carries: the secret of the commitment it
    /// revoked, and the point after it.
    fn keep_validated(&self, n: u64, reply: &[u8]) {
        let Ok(reply) = ValidateCommitmentTxReply::from_vec(reply.to_vec()) else {
            return;
        };
        self.note(|r| {
            if let (Some(secret), Some(prev)) = (&reply.old_commitment_secret, n.checked_sub(1)) {
                r.keep_secret(prev, &secret.0);
            }
            r.keep_point(n + 1, &reply.next_per_commitment_point.0);
        });
    }

    /// Sets the channel up on the signer if it is not yet (durably noted once it is).
    fn ensure_setup(&self, params: &ChannelTransactionParameters) -> Result<(), ()> {
        if self.record().is_some_and(|r| r.setup.is_some()) {
            return Ok(());
        }
        let Some(setup) = messages::setup(params) else {
            tracing::warn!(dbid = self.dbid, "channel parameters incomplete: not set up yet");
            return Err(());
        };
        let raw = setup.as_vec();
        let _: SetupChannelReply = self.pendable(setup)?;
        self.update(|r| r.setup = Some(hex::encode(&raw)))?;
        Ok(())
    }

    /// A durable "validated" for LDK: `message` is kept until the signer answers it.
    fn keep_unanswered(&self, message: &[u8]) -> Result<(), ()> {
        let hex_msg = hex::encode(message);
        self.update(|r| {
            if !r.unanswered_validations.contains(&hex_msg) {
                r.unanswered_validations.push(hex_msg);
            }
        })
    }

    /// A validation (holder commitment or counterparty revocation), whose `Err` LDK answers
    /// by closing the channel: `Err` only on the signer's refusal. `ahead` is sent right
    /// behind it (see [`Calls::prefetch`](super::calls::Calls::prefetch)).
    fn validate(&self, message: Vec<u8>, ahead: Option<Vec<u8>>) -> Result<Option<Vec<u8>>, ()> {
        let set_up = self.record().is_some_and(|r| r.setup.is_some());
        if !set_up {
            // An inbound channel's first commitment comes before anything sets it up.
            self.keep_unanswered(&message)?;
            return Ok(None);
        }
        // Earlier ones first, in order.
        self.settle(false);
        let ticket = self.shared.calls.submit(Some(self.dbid), message.clone());
        if let Some(ahead) = ahead {
            self.shared.calls.prefetch(Some(self.dbid), ahead);
        }
        match self.shared.calls.wait(&ticket) {
            Some(Ok(reply)) => Ok(Some(reply)),
            Some(Err(why)) => {
                tracing::warn!(dbid = self.dbid, %why, "the signer refused a validation");
                Err(())
            }
            None => {
                // No signer now: LDK goes on, the validation stays until one answers.
                self.keep_unanswered(&message)?;
                self.sent
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((hex::encode(&message), ticket));
                self.shared.owe_unblock();
                Ok(None)
            }
        }
    }

    /// A validation whose reply LDK does not need, sent without waiting: kept durably
    /// first, like one sent while no signer is attached, so it reaches the signer (again,
    /// after a restart) before anything later for the channel. LDK checks what it is told
    /// itself (a revocation secret against the point), so the signer refusing it would
    /// mean the two disagree; its refusal is logged when it comes, and the signer refuses
    /// the channel's next signatures on its own account.
    fn validate_behind(&self, message: Vec<u8>) -> Result<(), ()> {
        self.keep_unanswered(&message)?;
        // Sent now, unless the channel is not set up on the signer yet (settle holds it).
        self.settle(false);
        Ok(())
    }

    /// Are validations unanswered below commitment `n` that the signer needs first?
    fn blocked_before(&self, n: u64) -> bool {
        let Some(record) = self.record() else {
            return false;
        };
        record.unanswered_validations.iter().any(|h| {
            hex::decode(h)
                .ok()
                .and_then(|raw| ValidateCommitmentTx2::from_vec(raw).ok())
                .is_some_and(|v| n > v.commitment_number + 1)
        })
    }

    fn wallet_path() -> ArrayBE<u32> {
        vec![Destination::INDEX].into()
    }
}

/// A request's debug form, cut for a log line.
fn short(s: &str) -> &str {
    let end = s
        .char_indices()
        .nth(120)
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    &s[..end]
}

fn sig_of(reply: SignTxReply) -> Result<Signature, ()> {
    messages::signature(&reply.signature).ok_or(())
}

impl LdkChannelSigner for ChannelSigner {
    fn get_per_commitment_point(
        &self,
        idx: u64,
        _secp: &Secp256k1<All>,
    ) -> Result<PublicKey, ()> {
        let n = vls_number(idx);
        let record = self.record();
        if let Some(point) = record.as_ref().and_then(|r| r.point(n)) {
            return PublicKey::from_slice(&point).map_err(|_| ());
        }
        if !self.settle(false) && self.blocked_before(n) {
            self.shared.owe_unblock();
            return Err(());
        }
        let reply: GetPerCommitmentPoint2Reply =
            self.pendable(GetPerCommitmentPoint2 { commitment_number: n })?;
        let point = PublicKey::from_slice(&reply.point.0).map_err(|_| ())?;
        self.note(|r| r.keep_point(n, &reply.point.0));
        Ok(point)
    }

    fn release_commitment_secret(&self, idx: u64) -> Result<[u8; 32], ()> {
        let n = vls_number(idx);
        let kept = || self.record().and_then(|r| r.secret(n));
        if let Some(s) = kept() {
            return Ok(s);
        }
        // The validation that revokes it carries it.
        let settled = self.settle(true);
        if let Some(s) = kept() {
            return Ok(s);
        }
        if !settled {
            self.shared.owe_unblock();
            return Err(());
        }
        // Asking for the point two ahead releases the secret (protocol 4).
        let reply: GetPerCommitmentPointReply = self.pendable(GetPerCommitmentPoint {
            commitment_number: n + 2,
        })?;
        let secret = reply.secret.ok_or(())?.0;
        self.note(|r| r.keep_secret(n, &secret));
        Ok(secret)
    }

    fn validate_holder_commitment(
        &self,
        holder_tx: &HolderCommitmentTransaction,
        _outbound_htlc_preimages: Vec<PaymentPreimage>,
    ) -> Result<(), ()> {
        let tx = holder_tx.trust();
        let n = vls_number(tx.commitment_number());
        let message = ValidateCommitmentTx2 {
            commitment_number: n,
            feerate: tx.negotiated_feerate_per_kw(),
            to_local_value_sat: tx.to_broadcaster_value_sat(),
            to_remote_value_sat: tx.to_countersignatory_value_sat(),
            htlcs: messages::htlcs(tx.nondust_htlcs(), false),
            signature: messages::bitcoin_sig(&holder_tx.counterparty_sig),
            htlc_signatures: Array(
                holder_tx
                    .counterparty_htlc_sigs
                    .iter()
                    .map(messages::bitcoin_sig)
                    .collect(),
            ),
        };
        // LDK asks for the point two ahead next, before it sends its revocation; VLS can
        // give it once this validation is in. Sent right behind it, its answer comes with
        // the validation's instead of a round trip later.
        let ahead = self
            .record()
            .is_none_or(|r| r.point(n + 2).is_none())
            .then(|| GetPerCommitmentPoint2 { commitment_number: n + 2 }.as_vec());
        if let Some(reply) = self.validate(message.as_vec(), ahead)? {
            self.keep_validated(n, &reply);
        }
        Ok(())
    }

    fn validate_counterparty_revocation(&self, idx: u64, secret: &SecretKey) -> Result<(), ()> {
        let message = ValidateRevocation {
            commitment_number: vls_number(idx),
            commitment_secret: DisclosedSecret(secret.secret_bytes()),
        };
        // Nothing in the reply is needed: LDK goes on at once and the answer is taken in
        // with the next request for the channel, which the signer sees after this one.
        self.validate_behind(message.as_vec())
    }

    fn pubkeys(&self, _secp: &Secp256k1<All>) -> ChannelPublicKeys {
        self.keys.clone()
    }

    fn new_funding_pubkey(&self, _parent: Txid, _secp: &Secp256k1<All>) -> PublicKey {
        // Splicing is off in node-host's configuration, so LDK never asks. If it ever did,
        // the same funding key is the only answer that cannot lose funds (the splice would
        // fail its signature checks rather than pay to a key nobody holds).
        tracing::error!(dbid = self.dbid, "asked for a splice funding key: splicing is off");
        self.keys.funding_pubkey
    }

    fn channel_keys_id(&self) -> [u8; 32] {
        ChannelId::new_from_oid(self.dbid).ldk_channel_keys_id()
    }
}

impl EcdsaChannelSigner for ChannelSigner {
    fn sign_counterparty_commitment(
        &self,
        params: &ChannelTransactionParameters,
        commitment_tx: &CommitmentTransaction,
        _inbound_htlc_preimages: Vec<PaymentPreimage>,
        _outbound_htlc_preimages: Vec<PaymentPreimage>,
        _secp: &Secp256k1<All>,
    ) -> Result<(Signature, Vec<Signature>), ()> {
        self.ensure_setup(params)?;
        self.settle(false);
        let tx = commitment_tx.trust();
        let reply: SignCommitmentTxWithHtlcsReply = self.pendable(SignRemoteCommitmentTx2 {
            remote_per_commitment_point: messages::pubkey(&tx.keys().per_commitment_point),
            commitment_number: vls_number(tx.commitment_number()),
            feerate: tx.negotiated_feerate_per_kw(),
            to_local_value_sat: tx.to_countersignatory_value_sat(),
            to_remote_value_sat: tx.to_broadcaster_value_sat(),
            htlcs: messages::htlcs(tx.nondust_htlcs(), true),
        })?;
        let sig = messages::signature(&reply.signature).ok_or(())?;
        let htlc_sigs = reply
            .htlc_signatures
            .iter()
            .map(messages::signature)
            .collect::<Option<Vec<_>>>()
            .ok_or(())?;
        Ok((sig, htlc_sigs))
    }

    fn sign_holder_commitment(
        &self,
        params: &ChannelTransactionParameters,
        commitment_tx: &HolderCommitmentTransaction,
        _secp: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.ensure_setup(params)?;
        // The signer must have seen every validation before it signs the latest state.
        if !self.settle(true) {
            self.shared.owe_unblock();
            return Err(());
        }
        let reply: SignCommitmentTxReply = self.pendable(SignLocalCommitmentTx2 {
            commitment_number: vls_number(commitment_tx.commitment_number()),
        })?;
        messages::signature(&reply.signature).ok_or(())
    }

    fn unsafe_sign_holder_commitment(
        &self,
        params: &ChannelTransactionParameters,
        commitment_tx: &HolderCommitmentTransaction,
        secp: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        // The signer signs only what its policy allows: there is no unsafe path.
        self.sign_holder_commitment(params, commitment_tx, secp)
    }

    fn sign_justice_revoked_output(
        &self,
        params: &ChannelTransactionParameters,
        justice_tx: &Transaction,
        input: usize,
        amount: u64,
        per_commitment_key: &SecretKey,
        secp: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.ensure_setup(params)?;
        let script = messages::revoked_to_local_script(params, per_commitment_key, secp).ok_or(())?;
        self.penalty(justice_tx, input, amount, per_commitment_key, script)
    }

    fn sign_justice_revoked_htlc(
        &self,
        params: &ChannelTransactionParameters,
        justice_tx: &Transaction,
        input: usize,
        amount: u64,
        per_commitment_key: &SecretKey,
        htlc: &HTLCOutputInCommitment,
        secp: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.ensure_setup(params)?;
        let point = PublicKey::from_secret_key(secp, per_commitment_key);
        let script = messages::counterparty_htlc_script(params, &point, htlc, secp).ok_or(())?;
        self.penalty(justice_tx, input, amount, per_commitment_key, script)
    }

    fn sign_holder_htlc_transaction(
        &self,
        htlc_tx: &Transaction,
        input: usize,
        descriptor: &HTLCDescriptor,
        secp: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        let params = &descriptor.channel_derivation_parameters.transaction_parameters;
        self.ensure_setup(params)?;
        let script = descriptor.witness_script(secp);
        let mut psbt = self
            .shared
            .destination
            .psbt(htlc_tx, input, descriptor.previous_utxo(secp))
            .ok_or(())?;
        if let Some(out) = psbt.outputs.get_mut(0) {
            out.witness_script = Some(messages::holder_htlc_output_script(descriptor, secp).ok_or(())?);
        }
        let reply: SignTxReply = self.shared.node_pendable(SignAnyLocalHtlcTx {
            commitment_number: vls_number(descriptor.per_commitment_number),
            tx: WithSize(htlc_tx.clone()),
            psbt: messages::wire_psbt(psbt),
            wscript: script.to_bytes().into(),
            option_anchors: false,
            input: input as u32,
            peer_id: PubKey([0; 33]),
            dbid: self.dbid,
        })?;
        sig_of(reply)
    }

    fn sign_counterparty_htlc_transaction(
        &self,
        params: &ChannelTransactionParameters,
        htlc_tx: &Transaction,
        input: usize,
        amount: u64,
        per_commitment_point: &PublicKey,
        htlc: &HTLCOutputInCommitment,
        secp: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.ensure_setup(params)?;
        let script =
            messages::counterparty_htlc_script(params, per_commitment_point, htlc, secp).ok_or(())?;
        let psbt = self
            .shared
            .destination
            .psbt(htlc_tx, input, messages::p2wsh(&script, amount))
            .ok_or(())?;
        let reply: SignTxReply = self.shared.node_pendable(SignAnyRemoteHtlcToUs {
            remote_per_commitment_point: messages::pubkey(per_commitment_point),
            tx: WithSize(htlc_tx.clone()),
            psbt: messages::wire_psbt(psbt),
            wscript: script.to_bytes().into(),
            option_anchors: false,
            input: input as u32,
            peer_id: PubKey([0; 33]),
            dbid: self.dbid,
        })?;
        sig_of(reply)
    }

    fn sign_closing_transaction(
        &self,
        params: &ChannelTransactionParameters,
        tx: &ClosingTransaction,
        _secp: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.ensure_setup(params)?;
        self.settle(false);
        let reply: SignTxReply = self.pendable(SignMutualCloseTx2 {
            to_local_value_sat: tx.to_holder_value_sat(),
            to_remote_value_sat: tx.to_counterparty_value_sat(),
            local_script: tx.to_holder_script().to_bytes().into(),
            remote_script: tx.to_counterparty_script().to_bytes().into(),
            local_wallet_path_hint: Self::wallet_path(),
        })?;
        sig_of(reply)
    }

    fn sign_holder_keyed_anchor_input(
        &self,
        _params: &ChannelTransactionParameters,
        _anchor_tx: &Transaction,
        _input: usize,
        _secp: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        // Anchor channels are off in node-host's configuration; no VLS message signs one
        // anchor input.
        tracing::error!(dbid = self.dbid, "asked to sign an anchor input: anchors are off");
        Err(())
    }

    fn sign_channel_announcement_with_funding_key(
        &self,
        params: &ChannelTransactionParameters,
        msg: &UnsignedChannelAnnouncement,
        _secp: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.ensure_setup(params)?;
        // The signer takes CLN's form: the announcement behind room for the four signatures
        // and the type (258 bytes).
        let mut announcement = vec![0u8; 258];
        announcement.extend(msg.encode());
        let reply: SignChannelAnnouncementReply = self.pendable(SignChannelAnnouncement {
            announcement: announcement.into(),
        })?;
        Signature::from_compact(&reply.bitcoin_signature.0).map_err(|_| ())
    }

    fn sign_splice_shared_input(
        &self,
        _params: &ChannelTransactionParameters,
        _tx: &Transaction,
        _input_index: usize,
        _secp: &Secp256k1<All>,
    ) -> Signature {
        // Splicing is off, so LDK never asks. This method cannot fail; a signature that
        // does not verify makes the splice fail safely rather than the node panic.
        tracing::error!(dbid = self.dbid, "asked to sign a splice: splicing is off");
        // A signature by a key nobody uses, over nothing: it never verifies.
        let key = SecretKey::from_slice(&[1; 32]).expect("a valid constant key");
        Secp256k1::signing_only()
            .sign_ecdsa(&bitcoin::secp256k1::Message::from_digest([0; 32]), &key)
    }
}

impl ChannelSigner {
    fn penalty(
        &self,
        justice_tx: &Transaction,
        input: usize,
        amount: u64,
        per_commitment_key: &SecretKey,
        script: bitcoin::ScriptBuf,
    ) -> Result<Signature, ()> {
        let psbt = self
            .shared
            .destination
            .psbt(justice_tx, input, messages::p2wsh(&script, amount))
            .ok_or(())?;
        let reply: SignTxReply = self.shared.node_pendable(SignAnyPenaltyToUs {
            revocation_secret: DisclosedSecret(per_commitment_key.secret_bytes()),
            tx: WithSize(justice_tx.clone()),
            psbt: messages::wire_psbt(psbt),
            wscript: script.to_bytes().into(),
            input: input as u32,
            peer_id: PubKey([0; 33]),
            dbid: self.dbid,
        })?;
        sig_of(reply)
    }
}

/// LDK 0.2 never reads a signer back (it derives one from the keys id), but its bounds
/// want it writable: the id is enough.
impl Writeable for ChannelSigner {
    fn write<W: Writer>(&self, writer: &mut W) -> Result<(), bitcoin::io::Error> {
        self.dbid.write(writer)
    }
}
