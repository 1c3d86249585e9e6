//! Spending what a closed channel leaves to us (LDK's `OutputSpender`), signed by the
//! signer in one `SignWithdrawal`.
//!
//! What VLS needs to approve it under its strict policy (channel-signer.md §4.4):
//! - every input's `witness_utxo`;
//! - for each channel output, the channel and, for our delayed output, the commitment's
//!   per-commitment point (`close_info`): the signer derives the key from its own
//!   channel state, never from anything node-host claims about the key;
//! - every output paying our wallet tagged with its path, so the signer sees the sweep
//!   pays us (an untagged output would go to the device's approver, which refuses it).
//!
//! The sweep is asked only while a signer is attached and never parked: its locktime is
//! the height, so a parked request would be signed stale. LDK's sweeper asks again each
//! block and on its timer, so a sweep the signer cannot sign yet (no signer, or its chain
//! a block behind) is retried, never dropped.

use bitcoin::absolute::LockTime;
use bitcoin::psbt::{Input, Psbt};
use bitcoin::secp256k1::Secp256k1;
use bitcoin::{ScriptBuf, Transaction, TxOut};
use lightning::sign::SpendableOutputDescriptor;
use lightning_signer::bitcoin;
use lightning_signer::channel::ChannelId;
use lightning_signer::lightning;
use vls_protocol::model::{CloseInfo, PubKey, Utxo};
use vls_protocol::msgs::{DeBolt, SerBolt, SignWithdrawal, SignWithdrawalReply};
use vls_protocol::psbt::StreamedPSBT;
use vls_protocol::serde_bolt::{Array, Octets};

use super::channel::Channels;
use super::channel::messages::{Destination, pubkey};
use super::stage::SignerError;

/// Builds and has the signer sign a transaction spending `descriptors` to `outputs`, the
/// rest (less the fee at `sat_per_kw`) to `change`.
pub fn spend(
    channels: &Channels,
    descriptors: &[&SpendableOutputDescriptor],
    outputs: Vec<TxOut>,
    change: ScriptBuf,
    sat_per_kw: u32,
    locktime: Option<LockTime>,
) -> Result<Transaction, String> {
    let psbt = unsigned(
        channels.destination(),
        descriptors,
        outputs,
        change,
        sat_per_kw,
        locktime,
    )?;
    let mut tx = psbt.unsigned_tx.clone();
    let message = SignWithdrawal {
        utxos: Array(descriptors.iter().map(|d| utxo(d)).collect()),
        psbt: StreamedPSBT::new(psbt).into(),
    };
    let raw = channels
        .calls()
        .if_attached(message.as_vec())
        .map_err(|e| match e {
            SignerError::Refused(why) => format!("the signer refused the sweep: {why}"),
            SignerError::Unavailable(why) => format!("no signature yet: {why}"),
        })?;
    let reply = SignWithdrawalReply::from_vec(raw)
        .map_err(|e| format!("the signer's reply is unreadable: {e:?}"))?;
    let signed = reply.psbt.0.inner;
    if signed.inputs.len() != tx.input.len() {
        return Err("the signer's reply has another number of inputs".into());
    }
    for (input, signed) in tx.input.iter_mut().zip(signed.inputs) {
        input.witness = signed
            .final_script_witness
            .ok_or_else(|| "the signer left an input unsigned".to_string())?;
    }
    tracing::info!(
        txid = %tx.compute_txid(),
        inputs = ?tx.input.iter().map(|i| i.previous_output.to_string()).collect::<Vec<_>>(),
        "sweep signed"
    );
    Ok(tx)
}

/// The sweep as a PSBT: LDK's construction (inputs, sequences, fee, change), each input
/// carrying only what it spends, our outputs tagged.
fn unsigned(
    destination: &Destination,
    descriptors: &[&SpendableOutputDescriptor],
    outputs: Vec<TxOut>,
    change: ScriptBuf,
    sat_per_kw: u32,
    locktime: Option<LockTime>,
) -> Result<Psbt, String> {
    let secp = Secp256k1::signing_only();
    let (mut psbt, _weight) = SpendableOutputDescriptor::create_spendable_outputs_psbt(
        &secp,
        descriptors,
        outputs,
        change,
        sat_per_kw,
        locktime,
    )
    .map_err(|()| "the outputs cannot be swept (too small for their fee, or listed twice)")?;
    // LDK adds its own key-derivation hints; the signer derives keys itself.
    for input in &mut psbt.inputs {
        *input = Input {
            witness_utxo: input.witness_utxo.take(),
            ..Default::default()
        };
    }
    destination.tag(&mut psbt);
    Ok(psbt)
}

/// What the signer is told of each input: the channel an output comes from (its dbid, in
/// the last eight bytes of LDK's keys id) and, for our delayed output, the commitment's
/// point. A static output is a wallet output at our destination key.
fn utxo(d: &SpendableOutputDescriptor) -> Utxo {
    let (outpoint, amount, keyindex, close_info) = match d {
        SpendableOutputDescriptor::StaticOutput { outpoint, output, .. } => {
            (*outpoint, output.value, Destination::INDEX, None)
        }
        SpendableOutputDescriptor::DelayedPaymentOutput(o) => (
            o.outpoint,
            o.output.value,
            0,
            Some(CloseInfo {
                channel_id: ChannelId::new(&o.channel_keys_id).oid(),
                peer_id: PubKey([0; 33]),
                commitment_point: Some(pubkey(&o.per_commitment_point)),
                is_anchors: false,
                csv: o.to_self_delay as u32,
            }),
        ),
        SpendableOutputDescriptor::StaticPaymentOutput(o) => (
            o.outpoint,
            o.output.value,
            0,
            Some(CloseInfo {
                channel_id: ChannelId::new(&o.channel_keys_id).oid(),
                peer_id: PubKey([0; 33]),
                commitment_point: None,
                is_anchors: false,
                csv: 0,
            }),
        ),
    };
    Utxo {
        txid: outpoint.txid,
        outnum: outpoint.index as u32,
        amount: amount.to_sat(),
        keyindex,
        is_p2sh: false,
        script: Octets::EMPTY,
        close_info,
        is_in_coinbase: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::bip32::{Xpriv, Xpub};
    use bitcoin::hashes::Hash;
    use bitcoin::{Amount, Network, Txid};
    use lightning::chain::transaction::OutPoint;
    use lightning::sign::StaticPaymentOutputDescriptor;

    fn destination() -> Destination {
        let secp = Secp256k1::new();
        let xpriv = Xpriv::new_master(Network::Regtest, &[7; 32]).unwrap();
        Destination::new(&Xpub::from_priv(&secp, &xpriv)).unwrap()
    }

    fn to_remote(dbid: u64, sats: u64) -> SpendableOutputDescriptor {
        let secp = Secp256k1::new();
        let key = bitcoin::secp256k1::PublicKey::from_secret_key(
            &secp,
            &bitcoin::secp256k1::SecretKey::from_slice(&[3; 32]).unwrap(),
        );
        let script = ScriptBuf::new_p2wpkh(&bitcoin::CompressedPublicKey(key).wpubkey_hash());
        SpendableOutputDescriptor::StaticPaymentOutput(StaticPaymentOutputDescriptor {
            outpoint: OutPoint {
                txid: Txid::from_byte_array([1; 32]),
                index: 1,
            },
            output: TxOut {
                value: Amount::from_sat(sats),
                script_pubkey: script,
            },
            channel_keys_id: ChannelId::new_from_oid(dbid).ldk_channel_keys_id(),
            channel_value_satoshis: 200_000,
            channel_transaction_parameters: None,
        })
    }

    #[test]
    fn a_sweep_to_our_wallet_is_tagged_and_names_its_channel() {
        let d = destination();
        let remote = to_remote(5, 50_000);
        let psbt = unsigned(&d, &[&remote], vec![], d.script.clone(), 253, None).unwrap();
        assert_eq!(psbt.unsigned_tx.output.len(), 1);
        assert_eq!(psbt.unsigned_tx.output[0].script_pubkey, d.script);
        assert!(psbt.unsigned_tx.output[0].value < Amount::from_sat(50_000));
        let (fingerprint, path) = &psbt.outputs[0].bip32_derivation[&d.key];
        assert_eq!(*fingerprint, d.fingerprint);
        assert_eq!(path.to_string(), "1");
        assert!(psbt.inputs[0].witness_utxo.is_some());
        let u = utxo(&remote);
        assert_eq!((u.txid, u.outnum), (Txid::from_byte_array([1; 32]), 1));
        let info = u.close_info.unwrap();
        assert_eq!(info.channel_id, 5);
        assert!(info.commitment_point.is_none());
    }

    #[test]
    fn an_output_too_small_for_its_fee_is_not_swept() {
        let d = destination();
        let dust = to_remote(1, 300);
        assert!(unsigned(&d, &[&dust], vec![], d.script.clone(), 5000, None).is_err());
    }

    #[test]
    fn a_payment_elsewhere_is_left_untagged() {
        let d = destination();
        let other = destination_for(9);
        let remote = to_remote(2, 80_000);
        let psbt = unsigned(
            &d,
            &[&remote],
            vec![TxOut {
                value: Amount::from_sat(30_000),
                script_pubkey: other,
            }],
            d.script.clone(),
            253,
            None,
        )
        .unwrap();
        let ours: Vec<bool> = psbt
            .outputs
            .iter()
            .map(|o| !o.bip32_derivation.is_empty())
            .collect();
        assert_eq!(ours, vec![false, true]);
    }

    fn destination_for(seed: u8) -> ScriptBuf {
        let secp = Secp256k1::new();
        let xpriv = Xpriv::new_master(Network::Regtest, &[seed; 32]).unwrap();
        Destination::new(&Xpub::from_priv(&secp, &xpriv))
            .unwrap()
            .script
    }
}
