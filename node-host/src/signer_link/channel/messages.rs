//! VLS protocol messages built from LDK's channel types, and the scripts on-chain claims
//! need (the same `chan_utils` constructions VLS's in-process adapter uses).

use bitcoin::bip32::{ChildNumber, DerivationPath, Fingerprint};
use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::{All, PublicKey, Secp256k1, SecretKey, ecdsa::Signature};
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{ScriptBuf, Transaction, TxOut};
use lightning::ln::chan_utils::{
    self, ChannelTransactionParameters, HTLCOutputInCommitment, TxCreationKeys,
};
use lightning::ln::channel_keys::{DelayedPaymentKey, RevocationKey};
use lightning::sign::HTLCDescriptor;
use lightning_signer::bitcoin;
use lightning_signer::channel::CommitmentType;
use lightning_signer::lightning;
use vls_protocol::model::{self, Basepoints, BitcoinSignature, Htlc, PubKey};
use vls_protocol::msgs::SetupChannel;
use vls_protocol::psbt::PsbtWrapper;
use vls_protocol::serde_bolt::{Array, Octets, WithSize};
use vls_protocol_signer::util::commitment_type_to_channel_type;

/// The signer's wallet key LDK's destination and shutdown scripts pay to (path `[1]`),
/// named in every claim's output so VLS sees the output is ours.
#[derive(Clone)]
pub struct Destination {
    /// The wallet's account key (the wallet's keys are its children).
    pub account: bitcoin::bip32::Xpub,
    /// The key at path `[1]` under the wallet's account key.
    pub key: PublicKey,
    /// The account key's fingerprint.
    pub fingerprint: Fingerprint,
    /// Pays to `key` (P2WPKH).
    pub script: ScriptBuf,
}

impl Destination {
    /// The path of [`Destination::key`].
    pub const INDEX: u32 = 1;

    /// The destination under account key `xpub`.
    pub fn new(xpub: &bitcoin::bip32::Xpub) -> Option<Self> {
        let secp = Secp256k1::verification_only();
        let child = xpub
            .ckd_pub(&secp, ChildNumber::from_normal_idx(Self::INDEX).ok()?)
            .ok()?;
        let key = child.public_key;
        let compressed = bitcoin::CompressedPublicKey(key);
        Some(Destination {
            account: *xpub,
            key,
            fingerprint: xpub.fingerprint(),
            script: ScriptBuf::new_p2wpkh(&compressed.wpubkey_hash()),
        })
    }

    /// `tx` as a PSBT with `spent` as input `input`'s previous output and every output
    /// paying to us tagged with its path.
    pub fn psbt(&self, tx: &Transaction, input: usize, spent: TxOut) -> Option<Psbt> {
        let mut psbt = Psbt::from_unsigned_tx(strip(tx)).ok()?;
        psbt.inputs.get_mut(input)?.witness_utxo = Some(spent);
        self.tag(&mut psbt);
        Some(psbt)
    }

    /// Tags every output of `psbt` that pays to us with its path: VLS's sweep policy checks
    /// each output against the wallet by that path.
    pub fn tag(&self, psbt: &mut Psbt) {
        let path = DerivationPath::from(vec![ChildNumber::Normal {
            index: Self::INDEX,
        }]);
        for (out, txout) in psbt.outputs.iter_mut().zip(&psbt.unsigned_tx.output) {
            if txout.script_pubkey == self.script {
                out.bip32_derivation
                    .insert(self.key, (self.fingerprint, path.clone()));
            }
        }
    }
}

/// `tx` without witnesses (a PSBT's unsigned transaction must have none).
fn strip(tx: &Transaction) -> Transaction {
    let mut tx = tx.clone();
    for i in &mut tx.input {
        i.witness.clear();
        i.script_sig = ScriptBuf::new();
    }
    tx
}

/// A PSBT for the wire.
pub fn wire_psbt(psbt: Psbt) -> WithSize<PsbtWrapper> {
    WithSize(PsbtWrapper::from(psbt))
}

/// A compressed key for the wire.
pub fn pubkey(key: &PublicKey) -> PubKey {
    PubKey(key.serialize())
}

/// A signature for the wire.
pub fn bitcoin_sig(sig: &Signature) -> BitcoinSignature {
    BitcoinSignature {
        signature: model::Signature(sig.serialize_compact()),
        sighash: EcdsaSighashType::All as u8,
    }
}

/// A signature from the wire.
pub fn signature(sig: &BitcoinSignature) -> Option<Signature> {
    Signature::from_compact(&sig.signature.0).ok()
}

/// HTLCs for the wire; `counterparty` when the commitment is the counterparty's (an HTLC it
/// offers is one we receive).
pub fn htlcs(htlcs: &[HTLCOutputInCommitment], counterparty: bool) -> Array<Htlc> {
    Array(
        htlcs
            .iter()
            .map(|h| Htlc {
                side: if h.offered != counterparty {
                    Htlc::LOCAL
                } else {
                    Htlc::REMOTE
                },
                amount: h.amount_msat,
                payment_hash: model::Sha256(h.payment_hash.0),
                ctlv_expiry: h.cltv_expiry,
            })
            .collect(),
    )
}

/// The `SetupChannel` message for a channel's parameters; `None` before LDK knows the
/// funding outpoint and the counterparty.
pub fn setup(p: &ChannelTransactionParameters) -> Option<SetupChannel> {
    let funding = p.funding_outpoint?;
    let cp = p.counterparty_parameters.as_ref()?;
    let features = &p.channel_type_features;
    let commitment_type = if features.supports_anchors_zero_fee_htlc_tx() {
        CommitmentType::AnchorsZeroFeeHtlc
    } else if features.supports_anchors_nonzero_fee_htlc_tx() {
        CommitmentType::Anchors
    } else {
        CommitmentType::StaticRemoteKey
    };
    Some(SetupChannel {
        is_outbound: p.is_outbound_from_holder,
        channel_value: p.channel_value_satoshis,
        // LDK pushes nothing at open here, and neither side's shutdown script is fixed
        // upfront: the monitor's and the manager's setups are byte-identical.
        push_value: 0,
        funding_txid: funding.txid,
        funding_txout: funding.index,
        to_self_delay: p.holder_selected_contest_delay,
        local_shutdown_script: Octets::EMPTY,
        local_shutdown_wallet_index: None,
        remote_basepoints: Basepoints {
            revocation: pubkey(&cp.pubkeys.revocation_basepoint.0),
            payment: pubkey(&cp.pubkeys.payment_point),
            htlc: pubkey(&cp.pubkeys.htlc_basepoint.0),
            delayed_payment: pubkey(&cp.pubkeys.delayed_payment_basepoint.0),
        },
        remote_funding_pubkey: pubkey(&cp.pubkeys.funding_pubkey),
        remote_to_self_delay: cp.selected_contest_delay,
        remote_shutdown_script: Octets::EMPTY,
        channel_type: commitment_type_to_channel_type(commitment_type).into(),
    })
}

/// Our HTLC transaction's output script (revocable by the counterparty, delayed for us).
pub fn holder_htlc_output_script(d: &HTLCDescriptor, secp: &Secp256k1<All>) -> Option<ScriptBuf> {
    let p = &d.channel_derivation_parameters.transaction_parameters;
    populated(p)?;
    let params = p.as_holder_broadcastable();
    let delayed = DelayedPaymentKey::from_basepoint(
        secp,
        &params.broadcaster_pubkeys().delayed_payment_basepoint,
        &d.per_commitment_point,
    );
    let revocation = RevocationKey::from_basepoint(
        secp,
        &params.countersignatory_pubkeys().revocation_basepoint,
        &d.per_commitment_point,
    );
    Some(chan_utils::get_revokeable_redeemscript(
        &revocation,
        params.contest_delay(),
        &delayed,
    ))
}

/// LDK's directed views of the parameters assert they are complete: checked first.
fn populated(p: &ChannelTransactionParameters) -> Option<()> {
    (p.counterparty_parameters.is_some() && p.funding_outpoint.is_some()).then_some(())
}

/// The HTLC script of the counterparty's commitment at `point`.
pub fn counterparty_htlc_script(
    p: &ChannelTransactionParameters,
    point: &PublicKey,
    htlc: &HTLCOutputInCommitment,
    secp: &Secp256k1<All>,
) -> Option<ScriptBuf> {
    populated(p)?;
    let params = p.as_counterparty_broadcastable();
    let keys = TxCreationKeys::from_channel_static_keys(
        point,
        params.broadcaster_pubkeys(),
        params.countersignatory_pubkeys(),
        secp,
    );
    Some(chan_utils::get_htlc_redeemscript(
        htlc,
        params.channel_type_features(),
        &keys,
    ))
}

/// The counterparty's revoked `to_local` script, given the revoked commitment's secret.
pub fn revoked_to_local_script(
    p: &ChannelTransactionParameters,
    per_commitment_key: &SecretKey,
    secp: &Secp256k1<All>,
) -> Option<ScriptBuf> {
    populated(p)?;
    let point = PublicKey::from_secret_key(secp, per_commitment_key);
    let params = p.as_counterparty_broadcastable();
    let revocation = RevocationKey::from_basepoint(
        secp,
        &params.countersignatory_pubkeys().revocation_basepoint,
        &point,
    );
    let delayed = DelayedPaymentKey::from_basepoint(
        secp,
        &params.broadcaster_pubkeys().delayed_payment_basepoint,
        &point,
    );
    Some(chan_utils::get_revokeable_redeemscript(
        &revocation,
        params.contest_delay(),
        &delayed,
    ))
}

/// A P2WSH output of `amount` sat to `script`.
pub fn p2wsh(script: &ScriptBuf, amount: u64) -> TxOut {
    TxOut {
        value: bitcoin::Amount::from_sat(amount),
        script_pubkey: script.to_p2wsh(),
    }
}
