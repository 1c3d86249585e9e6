//! Our channel-signer client: LDK 0.2's channel-signer traits over the stage, in VLS
//! protocol messages, replacing upstream `vls-protocol-client`'s `SignerClient`
//! (channel-signer.md §1–3 has why and the method-by-method contract).
//!
//! - It never panics: a signer that is away or refuses is an `Err` LDK can live with.
//! - Methods LDK retries (`signer_unblocked`) park their request when no signer can answer
//!   now ([`calls`]); the node calls `signer_unblocked` when an answer comes in.
//! - Validations, whose `Err` would close the channel, are never failed for want of a
//!   signer: LDK is told "done", and the validation is kept durably and sent before
//!   anything else for the channel until the signer answers it, across restarts too.
//!   Whatever needs its effect on the signer (the released secret, the next point) waits
//!   for that answer.
//! - What the signer told us of a channel is durable and shared by every instance
//!   ([`book`]); the secret a validation's reply carries is kept, so the revocation that
//!   follows needs no second round trip.

pub mod book;
pub mod calls;
pub mod messages;
mod signer;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lightning::sign::SignerProvider;
use lightning_signer::bitcoin::bip32::Xpub;
use vls_protocol::msgs::{NodeInfo, NodeInfoReply};
use vls_protocol_client::KeysManagerClient;

use lightning::ln::chan_utils::ChannelPublicKeys;
use lightning::util::ser::{Readable, Writeable};
use lightning_signer::channel::ChannelId;
use lightning_signer::lightning;
use vls_protocol::model::PubKey;
use vls_protocol::msgs::{
    DeBolt, GetChannelBasepoints, GetChannelBasepointsReply, NewChannel, NewChannelReply,
    SerBolt,
};

use self::book::{BookError, ChannelBook, ChannelRecord};
use self::calls::{Calls, Outcome};
use self::messages::Destination;
pub use self::signer::ChannelSigner;
use crate::signer_link::stage::{SignerError, Stage};

/// What every channel's signer shares: the requests, the records, and our wallet's
/// destination.
pub struct Channels {
    calls: Calls,
    book: ChannelBook,
    destination: Destination,
    /// Set when a method answered "not yet": the node owes LDK a `signer_unblocked`.
    owed: AtomicBool,
}

/// Why a channel's signer could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DeriveError {
    /// Its record could not be read or written.
    #[error(transparent)]
    Book(#[from] BookError),
    /// The signer would not create the channel.
    #[error("the signer did not create channel {dbid}: {why}")]
    Signer {
        /// The channel.
        dbid: u64,
        /// The signer's reason, or why none answered.
        why: String,
    },
}

impl Channels {
    /// Channel signers over `calls`, their records in `book`, paying claims to
    /// `destination`.
    pub fn new(calls: Calls, book: ChannelBook, destination: Destination) -> Self {
        Channels {
            calls,
            book,
            destination,
            owed: AtomicBool::new(false),
        }
    }

    /// Opens the records at `records` and derives where claims pay from the signer's wallet
    /// key (`NodeInfo`, through `client`, whose init is done); requests go through `stage`,
    /// waited for at most `deadline` while a signer is attached.
    pub fn open(
        client: &KeysManagerClient,
        stage: Arc<Stage>,
        deadline: Duration,
        records: std::sync::Arc<dyn crate::store::kv::NodeKv>,
    ) -> anyhow::Result<Self> {
        use anyhow::{Context, anyhow, bail};
        let reply: NodeInfoReply = client
            .call(NodeInfo {})
            .map_err(|e| anyhow!("the signer did not give its wallet key: {e:?}"))?;
        let xpub =
            Xpub::decode(&reply.bip32.0).context("the signer's wallet key is unreadable")?;
        let destination = Destination::new(&xpub)
            .ok_or_else(|| anyhow!("cannot derive the wallet's claim key"))?;
        // LDK's destination and shutdown scripts (upstream's) are what claims are tagged as.
        let ldk_destination = client
            .get_destination_script([0; 32])
            .map_err(|()| anyhow!("no destination script"))?;
        if ldk_destination != destination.script {
            bail!("the signer's wallet key does not give LDK's destination script");
        }
        let book = ChannelBook::open(records).context("cannot open the channel signers' records")?;
        Ok(Channels::new(Calls::new(stage, deadline), book, destination))
    }

    /// The signer's wallet account key, as it gave it at start-up (`NodeInfo`).
    pub fn wallet_xpub(&self) -> &Xpub {
        &self.destination.account
    }

    /// Where claims and sweeps pay: the wallet key LDK's destination script is for.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// The requests.
    pub fn calls(&self) -> &Calls {
        &self.calls
    }

    /// Takes the debt of a `signer_unblocked`: `true` if a method answered "not yet" since
    /// the last call.
    pub fn take_owed_unblock(&self) -> bool {
        self.owed.swap(false, Ordering::AcqRel)
    }

    fn owe_unblock(&self) {
        self.owed.store(true, Ordering::Release);
    }

    /// The signer of the channel with LDK keys id `keys_id`. A channel seen before is
    /// derived from its record with no request; a new one is created on the signer
    /// (`NewChannel`, `GetChannelBasepoints`), waiting for a signer as long as it takes.
    pub fn derive(self: &Arc<Self>, keys_id: [u8; 32]) -> Result<ChannelSigner, DeriveError> {
        let dbid = ChannelId::new(&keys_id).oid();
        let record = match self.book.get(dbid) {
            Some(r) => r,
            None => self.book.create(dbid, self.create_on_signer(dbid)?)?,
        };
        let keys = decode_keys(&record.basepoints).ok_or_else(|| {
            BookError::new(format!("channel {dbid}'s basepoints are damaged"))
        })?;
        Ok(ChannelSigner::new(self.clone(), dbid, keys))
    }

    fn create_on_signer(&self, dbid: u64) -> Result<ChannelRecord, DeriveError> {
        let failed = |why: String| DeriveError::Signer { dbid, why };
        let _: NewChannelReply = self
            .node_call_waiting(NewChannel {
                peer_id: PubKey([0; 33]),
                dbid,
            })
            .map_err(failed)?;
        let reply: GetChannelBasepointsReply = self
            .node_call_waiting(GetChannelBasepoints {
                node_id: PubKey([0; 33]),
                dbid,
            })
            .map_err(failed)?;
        let keys = ChannelPublicKeys {
            funding_pubkey: reply.funding.into(),
            revocation_basepoint: reply.basepoints.revocation.into(),
            payment_point: reply.basepoints.payment.into(),
            delayed_payment_basepoint: reply.basepoints.delayed_payment.into(),
            htlc_basepoint: reply.basepoints.htlc.into(),
        };
        Ok(ChannelRecord {
            basepoints: hex::encode(keys.encode()),
            ..Default::default()
        })
    }

    /// A node-level request answered before this returns, however long the signer takes;
    /// `Err` if it refuses or node-host stops first.
    fn node_call_waiting<T: SerBolt, R: DeBolt>(&self, message: T) -> Result<R, String> {
        let ticket = self.calls.submit(None, message.as_vec());
        loop {
            match ticket.wait(std::time::Duration::from_secs(1)) {
                Some(Ok(raw)) => {
                    return R::from_vec(raw).map_err(|e| format!("unreadable reply: {e:?}"));
                }
                Some(Err(SignerError::Refused(why))) => return Err(why),
                Some(Err(SignerError::Unavailable(why))) => return Err(why),
                None => {}
            }
        }
    }

    /// A pendable node-level request for a channel's on-chain claim.
    fn node_pendable<T: SerBolt, R: DeBolt>(&self, message: T) -> Result<R, ()> {
        match self.calls.pendable(None, message.as_vec()) {
            Outcome::Answer(raw) => R::from_vec(raw).map_err(|e| {
                tracing::error!(?e, "the signer's reply is unreadable");
            }),
            Outcome::Pending => {
                self.owe_unblock();
                Err(())
            }
            Outcome::Refused(why) => {
                tracing::warn!(%why, "the signer refused an on-chain claim");
                Err(())
            }
        }
    }
}

fn decode_keys(hex_keys: &str) -> Option<ChannelPublicKeys> {
    let bytes = hex::decode(hex_keys).ok()?;
    ChannelPublicKeys::read(&mut std::io::Cursor::new(bytes)).ok()
}
