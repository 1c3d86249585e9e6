//! The node's keys, all held by the signer: `vls-protocol-client`'s LDK adapter, wrapped
//! where it falls short for a node whose signer may be away.
//!
//! - Entropy is local (the upstream client asks the signer for random bytes: three round
//!   trips per payment for nothing).
//! - The channel-keys counter is persisted: upstream restarts it at 1, so a restarted node
//!   would derive its first channel's keys again for a new channel.
//! - Node-level calls that upstream `.expect()`s (ECDH, invoice and gossip signing) return
//!   errors instead, so an absent or refusing signer fails the call rather than the node;
//!   an ECDH tweak is applied node-side, which upstream does not support.
//! - Phantom-node requests are refused.
//! - Sweeps are our own ([`crate::signer_link::spend`]): upstream's panics when the signer
//!   refuses, and leaves the outputs untagged, which the signer's policy refuses.
//!
//! Channel signers are our own ([`crate::signer_link::channel`]); upstream's client is used
//! for the init and node-level calls only.

use std::sync::{Arc, Mutex};

use bitcoin::secp256k1::ecdh::SharedSecret;
use bitcoin::secp256k1::ecdsa::{RecoverableSignature, RecoveryId, Signature};
use bitcoin::secp256k1::{All, PublicKey, Scalar, Secp256k1};
use bitcoin::{ScriptBuf, Transaction, TxOut};
use lightning::ln::inbound_payment::ExpandedKey;
use lightning::ln::msgs::UnsignedGossipMessage;
use lightning::ln::script::ShutdownScript;
use lightning::sign::{
    EntropySource, NodeSigner, OutputSpender, PeerStorageKey, ReceiveAuthKey, Recipient,
    SignerProvider, SpendableOutputDescriptor,
};
use lightning::util::ser::Writeable;
use lightning_signer::bitcoin;
use lightning_signer::channel::ChannelId;
use lightning_signer::lightning;
use lightning_signer::lightning_invoice::RawBolt11Invoice;
use vls_protocol::model::PubKey;

use crate::store::kv::{Batch, Durability, NodeKv};
use crate::store::schema::{CHANNELS_CREATED, COUNTERS};
use vls_protocol::model::Utxo;
use vls_protocol::msgs::{
    Ecdh, EcdhReply, PreapproveInvoice, PreapproveInvoiceReply,
    SignBolt12Invoice, SignBolt12InvoiceReply, SignGossipMessage, SignGossipMessageReply,
    SignInvoice, SignInvoiceReply, SignWithdrawal, SignWithdrawalReply,
};
use vls_protocol::psbt::StreamedPSBT;
use vls_protocol::serde_bolt::{Array, Octets, WireString};
use vls_protocol_client::KeysManagerClient;

use crate::signer_link::channel::{ChannelSigner, Channels};
use crate::signer_link::transport::StageTransport;

/// Parks the calling thread until the process exits. For a signer call LDK cannot take a
/// failure of, once node-host is stopping and no signer will answer: failing it would panic
/// LDK with its locks held; waiting lets node-host exit as a kill would (see
/// `app::NodeHost::run`), with LDK's state on disk as it was, and the call made again at
/// the next start.
fn wait_for_exit() -> ! {
    tracing::warn!("node-host stops with a signer call LDK cannot do without still waiting");
    loop {
        std::thread::park();
    }
}

/// The node's keys.
pub struct RemoteKeys {
    client: KeysManagerClient,
    transport: Arc<StageTransport>,
    counter: Mutex<DbidCounter>,
    channels: Arc<Channels>,
}

/// The channel ids (VLS "dbid") given, counted in the node's store, durably before each
/// is used: an id is never given twice.
struct DbidCounter {
    kv: Arc<dyn NodeKv>,
}

impl DbidCounter {
    /// Takes the next id (the first is 1); it is stored as given before this returns.
    fn take(&mut self) -> std::io::Result<u64> {
        let mut batch = Batch::new(&*self.kv);
        let id = batch.next(COUNTERS, CHANNELS_CREATED)?;
        batch.commit(Durability::Immediate)?;
        Ok(id)
    }
}

impl RemoteKeys {
    /// Wraps an initialised client; the channel counter is kept in `kv`.
    pub fn new(
        client: KeysManagerClient,
        transport: Arc<StageTransport>,
        kv: Arc<dyn NodeKv>,
        channels: Arc<Channels>,
    ) -> std::io::Result<Self> {
        Ok(RemoteKeys {
            client,
            transport,
            counter: Mutex::new(DbidCounter { kv }),
            channels,
        })
    }

    /// Every channel's signer, shared.
    pub fn channels(&self) -> &Arc<Channels> {
        &self.channels
    }

    /// The signer's wallet account key: the wallet's keys are its children. Asked once,
    /// when the channel signers were opened.
    pub fn wallet_xpub(&self) -> bitcoin::bip32::Xpub {
        *self.channels.wallet_xpub()
    }

    /// Has the signer sign the wallet's inputs of `psbt` (`SignWithdrawal`); `inputs` gives,
    /// for each input in order, its key index and previous output. VLS checks what the
    /// transaction pays (a channel's funding, our own change, or a destination it allows).
    /// Returns the transaction with its witnesses, or the signer's reason for refusing.
    pub fn sign_wallet_spend(
        &self,
        psbt: bitcoin::psbt::Psbt,
        inputs: &[(u32, TxOut)],
    ) -> Result<Transaction, String> {
        let utxos = psbt
            .unsigned_tx
            .input
            .iter()
            .zip(inputs)
            .map(|(i, (index, out))| Utxo {
                txid: i.previous_output.txid,
                outnum: i.previous_output.vout,
                amount: out.value.to_sat(),
                keyindex: *index,
                is_p2sh: false,
                script: Octets::EMPTY,
                close_info: None,
                is_in_coinbase: false,
            })
            .collect();
        let mut tx = psbt.unsigned_tx.clone();
        let reply: SignWithdrawalReply = self
            .client
            .call(SignWithdrawal {
                utxos: Array(utxos),
                psbt: StreamedPSBT::new(psbt).into(),
            })
            .map_err(|_| {
                self.take_refusal()
                    .unwrap_or_else(|| "the signer did not answer".into())
            })?;
        let signed = reply.psbt.0.inner;
        for (input, signed) in tx.input.iter_mut().zip(signed.inputs) {
            input.witness = signed
                .final_script_witness
                .ok_or_else(|| "the signer left an input unsigned".to_string())?;
        }
        Ok(tx)
    }

    /// Asks the signer to approve paying `bolt11` (`PreapproveInvoice`). `Err` carries the
    /// signer's reason for refusing.
    pub fn preapprove_invoice(&self, bolt11: &str) -> Result<bool, String> {
        let reply: PreapproveInvoiceReply = self
            .client
            .call(PreapproveInvoice {
                invstring: WireString(bolt11.as_bytes().to_vec()),
            })
            .map_err(|_| {
                self.take_refusal()
                    .unwrap_or_else(|| "the signer did not answer".into())
            })?;
        Ok(reply.result)
    }

    /// A node-level request to the signer (chain tracking, say).
    pub fn node_call<T: vls_protocol::msgs::SerBolt, R: vls_protocol::msgs::DeBolt>(
        &self,
        message: T,
    ) -> Result<R, String> {
        self.client.call(message).map_err(|_| {
            self.take_refusal()
                .unwrap_or_else(|| "the signer did not answer".into())
        })
    }

    /// The signer's reason for the most recent refusal, if any.
    pub fn take_refusal(&self) -> Option<String> {
        self.transport.take_refusal()
    }
}

impl EntropySource for RemoteKeys {
    fn get_secure_random_bytes(&self) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).expect("the operating system's random source failed");
        bytes
    }
}

impl NodeSigner for RemoteKeys {
    fn get_expanded_key(&self) -> ExpandedKey {
        self.client.get_expanded_key()
    }

    fn get_peer_storage_key(&self) -> PeerStorageKey {
        self.client.get_peer_storage_key()
    }

    fn get_receive_auth_key(&self) -> ReceiveAuthKey {
        self.client.get_receive_auth_key()
    }

    fn get_node_id(&self, recipient: Recipient) -> Result<PublicKey, ()> {
        match recipient {
            Recipient::Node => self.client.get_node_id(Recipient::Node),
            Recipient::PhantomNode => Err(()),
        }
    }

    fn ecdh(
        &self,
        recipient: Recipient,
        other_key: &PublicKey,
        tweak: Option<&Scalar>,
    ) -> Result<SharedSecret, ()> {
        if !matches!(recipient, Recipient::Node) {
            return Err(());
        }
        // (k·t)·P = k·(t·P): the tweak applies to the other key, here.
        let point = match tweak {
            Some(t) => other_key.mul_tweak(&Secp256k1::new(), t).map_err(|_| ())?,
            None => *other_key,
        };
        // LDK unwraps this call where it decodes an HTLC's onion (`onion_utils.rs`), and a
        // peer stays connected while the signer sleeps: so for want of a signer this waits,
        // asking again each deadline, for as long as node-host runs, rather than fail (a
        // panic in LDK's processor). A refusal still fails at once.
        let reply: EcdhReply = loop {
            match self.client.call(Ecdh {
                point: PubKey(point.serialize()),
            }) {
                Ok(reply) => break reply,
                Err(vls_protocol_client::Error::TransportTransient) if !self.transport.closed() => {
                    tracing::info!("ECDH waits for the signer");
                }
                Err(vls_protocol_client::Error::TransportTransient) => wait_for_exit(),
                Err(_) => return Err(()),
            }
        };
        Ok(SharedSecret::from_bytes(reply.secret.0))
    }

    fn sign_invoice(
        &self,
        invoice: &RawBolt11Invoice,
        recipient: Recipient,
    ) -> Result<RecoverableSignature, ()> {
        if !matches!(recipient, Recipient::Node) {
            return Err(());
        }
        let (hrp, data) = invoice.to_raw();
        let reply: SignInvoiceReply = self
            .client
            .call(SignInvoice {
                u5bytes: Octets(data.iter().map(|u| u.to_u8()).collect()),
                hrp: hrp.into_bytes().into(),
            })
            .map_err(|_| ())?;
        let sig = &reply.signature.0;
        let rid = RecoveryId::from_i32(sig[64] as i32).map_err(|_| ())?;
        RecoverableSignature::from_compact(&sig[..64], rid).map_err(|_| ())
    }

    fn sign_bolt12_invoice(
        &self,
        invoice: &lightning::offers::invoice::UnsignedBolt12Invoice,
    ) -> Result<bitcoin::secp256k1::schnorr::Signature, ()> {
        let mut bytes = Vec::new();
        invoice.write(&mut bytes).map_err(|_| ())?;
        let reply: SignBolt12InvoiceReply = self
            .client
            .call(SignBolt12Invoice {
                invoice_bytes: Octets(bytes),
            })
            .map_err(|_| ())?;
        bitcoin::secp256k1::schnorr::Signature::from_slice(&reply.signature.0).map_err(|_| ())
    }

    fn sign_gossip_message(&self, msg: UnsignedGossipMessage) -> Result<Signature, ()> {
        let reply: SignGossipMessageReply = self
            .client
            .call(SignGossipMessage {
                message: Octets(msg.encode()),
            })
            .map_err(|_| ())?;
        Signature::from_compact(&reply.signature.0).map_err(|_| ())
    }

    fn sign_message(&self, msg: &[u8]) -> Result<String, ()> {
        self.client.sign_message(msg)
    }
}

impl SignerProvider for RemoteKeys {
    type EcdsaSigner = ChannelSigner;

    fn generate_channel_keys_id(&self, _inbound: bool, _user_channel_id: u128) -> [u8; 32] {
        let dbid = self
            .counter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            // Reusing an id would reuse a channel's keys: stopping is the only safe answer.
            .expect("cannot persist the channel counter");
        ChannelId::new_from_oid(dbid).ldk_channel_keys_id()
    }

    fn derive_channel_signer(&self, channel_keys_id: [u8; 32]) -> Self::EcdsaSigner {
        match self.channels.derive(channel_keys_id) {
            Ok(signer) => signer,
            // LDK cannot be told no here. A known channel never gets here (its record is
            // local); a new one does only if the signer refuses to create it, or node-host
            // stops while it is asked: no channel can exist without keys.
            Err(e) => panic!("cannot make the channel's signer: {e}"),
        }
    }

    fn get_destination_script(&self, keys_id: [u8; 32]) -> Result<ScriptBuf, ()> {
        self.client.get_destination_script(keys_id)
    }

    fn get_shutdown_scriptpubkey(&self) -> Result<ShutdownScript, ()> {
        self.client.get_shutdown_scriptpubkey()
    }
}

/// Sweeps of what closed channels leave to us, signed by the signer ([`super::spend`]).
impl OutputSpender for RemoteKeys {
    fn spend_spendable_outputs(
        &self,
        descriptors: &[&SpendableOutputDescriptor],
        outputs: Vec<TxOut>,
        change_destination_script: ScriptBuf,
        feerate_sat_per_1000_weight: u32,
        locktime: Option<bitcoin::absolute::LockTime>,
        _secp_ctx: &Secp256k1<All>,
    ) -> Result<Transaction, ()> {
        super::spend::spend(
            &self.channels,
            descriptors,
            outputs,
            change_destination_script,
            feerate_sat_per_1000_weight,
            locktime,
        )
        .map_err(|why| tracing::warn!(%why, "sweep not signed yet; the sweeper will retry"))
    }
}

/// Change from sweeps goes to the signer's wallet, where the signer recognises it.
impl lightning::sign::ChangeDestinationSource for RemoteKeys {
    fn get_change_destination_script<'a>(
        &'a self,
    ) -> lightning::util::async_poll::AsyncResult<'a, ScriptBuf, ()> {
        let script = self.get_shutdown_scriptpubkey().map(|s| s.into_inner());
        Box::pin(async move { script })
    }
}
