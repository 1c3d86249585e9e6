//! The signer: VLS validates and signs each request a node sends.
//!
//! The node keeps the signer's state and ships it; each request is handled as
//! enter → handle → prepare → commit, and the answer carries every entry the node does not
//! have yet (this request's changes, and any earlier ones the node failed to store).
//!
//! The VLS handler is built from the state and kept for the next request only while it is
//! known to match the state exactly: it is dropped, and built afresh, when the node's copy
//! brings anything newer, when a request fails or panics (its abandoned transaction may
//! have left the handler's memory ahead of the state), and at every init. A node that
//! restarts or reconnects (and initialises again) so never meets a handler that has already
//! been initialised: upstream panics on a second init. Building the handler was most of a
//! request's time (about 1.1 of 1.5 ms in process).

pub mod approvals;
pub mod marks;
mod pair;
pub mod revoked;
mod store;

use std::collections::BTreeMap;
use std::sync::Arc;

use bitcoin::Network;
use lightning_signer::node::NodeServices;
use lightning_signer::policy::onchain_validator::OnchainValidatorFactory;
use lightning_signer::policy::simple_validator::{SimpleValidatorFactory, make_simple_policy};
use lightning_signer::signer::ClockStartingTimeFactory;
use lightning_signer::util::clock::StandardClock;
use skylight_proto::greenlight::{HsmRequest, HsmResponse, SignerStateEntry};
use vls_persist::kvv::cloud::CloudKVVStore;
use vls_persist::kvv::memory::MemoryKVVStore;
use vls_persist::kvv::{JsonFormat, KVV, KVVPersister, KVVStore};
use vls_protocol::model::PubKey;
use vls_protocol::msgs::{self, HsmdInit2, Message};
use vls_protocol::serde_bolt::{Array, WireString};
use vls_protocol_signer::approver::{Approve, NegativeApprover};
use vls_protocol_signer::handler::{Error as HandlerError, Handler, HandlerBuilder, RootHandler};

use crate::secret::HsmSecret;
use crate::state_key::StateSigner;
pub use marks::Watermarks;

use crate::runes::RuneMaster;
use store::SharedStore;

/// hsmd message type of `SignMessage`: a node may not ask for one (it would let the node
/// prove the node key, e.g. to the scheduler).
const SIGN_MESSAGE: u16 = 23;

/// What the node key signs to prove itself (Lightning's signmessage, the scheduler's
/// challenges). Gossip signing hashes node-supplied bytes with the same sha256d, so a
/// gossip payload starting with this prefix would be a challenge proof in disguise.
const SIGNED_MESSAGE_PREFIX: &[u8] = b"Lightning Signed Message:";

/// Refuses requests that would sign what a `signmessage` signs.
fn refuse_disguised_message_signing(message: &Message) -> Result<(), String> {
    // The region each request hashes and signs (after the signature slots it carries).
    let signed: Option<&[u8]> = match message {
        Message::SignGossipMessage(m) => Some(&m.message.0[..]),
        Message::SignChannelUpdate(m) => m.update.0.get(2 + 64..),
        Message::SignNodeAnnouncement(m) => m.announcement.0.get(2 + 64..),
        Message::SignChannelAnnouncement(m) => m.announcement.0.get(2 + 4 * 64..),
        _ => None,
    };
    if signed.is_some_and(|r| r.starts_with(SIGNED_MESSAGE_PREFIX)) {
        return Err(
            "policy: refusing to sign a gossip payload shaped like a signed message".into(),
        );
    }
    Ok(())
}

/// A signer for one node.
pub struct Signer {
    seed: [u8; 32],
    network: Network,
    approver: Arc<dyn Approve>,
    signer_id: [u8; 16],
    local: SharedStore,
    /// Signs the state entries this signer produces and checks the node's copies.
    state_key: StateSigner,
    /// The highest version of each entry this device has seen.
    marks: Watermarks,
    /// The node id of the seed.
    node_id: [u8; 33],
    /// The seed's master rune: which devices' requests count.
    runes: RuneMaster,
    /// The devices revoked: their requests count for nothing.
    revoked: Arc<revoked::RevokedKeys>,
    /// The version of each entry the node is known to hold.
    node_has: BTreeMap<String, u64>,
    /// The handler of the last request, while it matches the state (see the module's
    /// notes).
    kept: Option<Kept>,
}

type Persister = KVVPersister<CloudKVVStore<SharedStore>, JsonFormat>;

/// A handler kept across requests, with what it persists through and approves by.
struct Kept {
    root: RootHandler,
    persister: Arc<Persister>,
    approver: Arc<approvals::CurrentApprover>,
}

impl Signer {
    /// A signer with `secret`, approving no payment by itself (strict default).
    pub fn new(secret: &HsmSecret, network: Network) -> Self {
        // The id VLS writes into the state it ships (its `_WRITER` record): a one-way hash,
        // never bytes of the secret, since the state is stored by the node.
        let digest = {
            use bitcoin::hashes::{Hash, HashEngine, sha256};
            let mut engine = sha256::Hash::engine();
            engine.input(b"skylight/signer-id/v1");
            engine.input(secret.bytes());
            sha256::Hash::from_engine(engine).to_byte_array()
        };
        let signer_id: [u8; 16] = digest[..16].try_into().expect("16 bytes");
        let keys = crate::keys::NodeKeys::derive(secret, network);
        Signer {
            seed: *secret.bytes(),
            network,
            approver: Arc::new(NegativeApprover()),
            signer_id,
            state_key: keys.state_signer(secret),
            node_id: keys.node_id_bytes(),
            marks: Watermarks::in_memory(),
            runes: RuneMaster::new(secret),
            revoked: Arc::new(revoked::RevokedKeys::in_memory()),
            local: SharedStore(Arc::new(MemoryKVVStore::new(signer_id))),
            node_has: BTreeMap::new(),
            kept: None,
        }
    }

    /// Keeps this device's version marks in `path`, so a node cannot serve it an older
    /// state than it has seen, even after the signer restarts.
    pub fn with_watermarks(mut self, path: &std::path::Path) -> std::io::Result<Self> {
        self.marks = Watermarks::open(path)?;
        // What this device answered but the node may never have stored: its copy again,
        // so an older one from the node reads as missed, and ours goes to it.
        let kept: Vec<KVV> = self
            .marks
            .unconfirmed()
            .into_iter()
            .map(|(k, v, value)| KVV(k, (v, value)))
            .collect();
        if !kept.is_empty() {
            self.local
                .put_batch(kept)
                .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
            self.kept = None;
        }
        Ok(self)
    }

    /// Keeps the revoked devices in `path` (see [`revoked`]).
    pub fn with_revocations(mut self, path: &std::path::Path) -> Self {
        self.revoked = Arc::new(revoked::RevokedKeys::at(path.to_path_buf()));
        self
    }

    /// The revoked devices, shared with whoever learns of more (the scheduler's list).
    pub fn revoked(&self) -> Arc<revoked::RevokedKeys> {
        self.revoked.clone()
    }

    /// A new session with a node: what it holds is learnt again from its requests.
    pub fn begin_session(&mut self) {
        self.node_has.clear();
    }

    /// The node stored these entries (its `RespondHsmRequest` succeeded).
    pub fn acknowledged(&mut self, entries: &[SignerStateEntry]) {
        for e in entries {
            let v = self.node_has.entry(e.key.clone()).or_default();
            *v = (*v).max(e.version);
            self.marks.confirmed(&e.key, e.version);
        }
    }

    /// Handles one request; never panics on what the node sends. Every answer, a refusal
    /// too, carries the proof that this seed gave it: node-host takes no other.
    pub fn handle(&mut self, req: &HsmRequest) -> HsmResponse {
        let mut response = self.answer(req);
        self.state_key.prove(&req.raw, &mut response);
        response
    }

    fn answer(&mut self, req: &HsmRequest) -> HsmResponse {
        let mut response = HsmResponse {
            request_id: req.request_id,
            ..Default::default()
        };
        if let Err(e) = self.merge(&req.signer_state) {
            response.error = if e.starts_with("policy") {
                e
            } else {
                format!("temporary: cannot merge the node's signer state: {e}")
            };
            return response;
        }
        match self.sign(req) {
            Ok(raw) => response.raw = raw,
            Err(error) => response.error = error,
        }
        // One listing of the local state serves both the device's marks and the news.
        let local: Vec<KVV> = self
            .local
            .get_prefix("")
            .map(|all| all.collect())
            .unwrap_or_default();
        let news: Vec<(String, u64, Vec<u8>)> = local
            .iter()
            .filter(|KVV(k, (v, _))| self.node_has.get(k).is_none_or(|have| have < v))
            .map(|KVV(k, (v, value))| (k.clone(), *v, value.clone()))
            .collect();
        if let Err(e) = self
            .marks
            .raise(local.iter().map(|KVV(k, (v, _))| (k.clone(), *v)), &news)
        {
            // Without its marks the device could be rolled back later: do not sign on.
            return HsmResponse {
                request_id: req.request_id,
                error: format!("temporary: cannot record state versions on this device: {e}"),
                ..Default::default()
            };
        }
        response.signer_state = self.news_for_node(local);
        for e in &mut response.signer_state {
            self.state_key.sign(e);
        }
        response
    }

    /// Takes the node's entries that are newer than ours. An entry at our version with
    /// another value is a fork only we have: the node refuses to release an answer whose
    /// state it could not store, so ours never counted, and the node's copy wins.
    fn merge(&mut self, entries: &[SignerStateEntry]) -> Result<(), String> {
        for e in entries {
            if !self.state_key.verify(e) {
                return Err(format!(
                    "policy: the node's copy of signer state entry {:?} is not signed by this signer (altered or foreign)",
                    e.key
                ));
            }
            if let Some(m) = self.marks.get(&e.key)
                && e.version < m
            {
                // Behind, not rolled back, when this device still holds what it produced:
                // the node missed an update (it stopped before storing an answer, say). Our
                // copy stays and goes to the node again; the older one is not taken.
                let ours = self
                    .local
                    .get_version(&e.key)
                    .map_err(|e| format!("{e:?}"))?;
                if ours.is_some_and(|v| v >= m) {
                    continue;
                }
                return Err(format!(
                    "policy: the node offers version {} of {:?}, older than this device has seen ({m}; its own copy is at {}): a rollback",
                    e.version,
                    e.key,
                    ours.map_or("none".to_string(), |v| v.to_string())
                ));
            }
        }
        let err = |e: lightning_signer::persist::Error| format!("{e:?}");
        let mut forked = std::collections::BTreeSet::new();
        for e in entries {
            if let Some((v, value)) = self.local.get(&e.key).map_err(err)?
                && v == e.version
                && value != e.value
            {
                forked.insert(e.key.clone());
            }
        }
        if !forked.is_empty() {
            self.kept = None;
            tracing::warn!(keys = ?forked, "the node holds another version of our state; taking the node's");
            // The store cannot forget a key (its delete writes a newer version), so the
            // local copy is rebuilt without the forked entries.
            let fresh = MemoryKVVStore::new(self.signer_id);
            let kept: Vec<KVV> = self
                .local
                .get_prefix("")
                .map_err(err)?
                .filter(|kvv| !forked.contains(&kvv.0))
                .collect();
            fresh.put_batch(kept).map_err(err)?;
            self.local = SharedStore(Arc::new(fresh));
        }
        let mut newer = Vec::new();
        for e in entries {
            // What the node holds, so what it lacks goes out as news.
            let v = self.node_has.entry(e.key.clone()).or_default();
            *v = (*v).max(e.version);
            let ours = self.local.get_version(&e.key).map_err(err)?;
            if ours.is_none_or(|o| o < e.version) {
                newer.push(KVV(e.key.clone(), (e.version, e.value.clone())));
            }
        }
        if !newer.is_empty() {
            // The kept handler's memory is older than this.
            self.kept = None;
            self.local.put_batch(newer).map_err(err)?;
        }
        self.refuse_omissions()
    }

    /// Refuses a state that leaves out an entry this device has seen. VLS never removes a
    /// key (a delete writes a newer, empty version), so an honest node ships every one; a
    /// node that leaves one out (a channel, say) would have the handler sign as if it never
    /// existed: a rollback by omission. Only the first request of a session carries the
    /// whole state, but the local copy keeps all of it for the session, so checking every
    /// time costs one lookup per key and needs no notion of "first".
    fn refuse_omissions(&self) -> Result<(), String> {
        for (key, mark) in self.marks.iter() {
            let have = self.local.get_version(key).map_err(|e| format!("{e:?}"))?;
            if have.is_none_or(|v| v < mark) {
                return Err(format!(
                    "policy: the node's copy of the signer state leaves out {key:?}, which this device has seen at version {mark}: a rollback"
                ));
            }
        }
        Ok(())
    }

    /// The entries of `local` the node does not hold at this version.
    fn news_for_node(&self, local: Vec<KVV>) -> Vec<SignerStateEntry> {
        local
            .into_iter()
            .filter(|kvv| self.node_has.get(&kvv.0).is_none_or(|v| *v < kvv.1.0))
            .map(|KVV(key, (version, value))| SignerStateEntry {
                version,
                key,
                value,
                signature: vec![],
            })
            .collect()
    }

    /// One request in one transaction; returns the reply bytes or the error text node-host
    /// understands ("temporary: …" may pass; anything else is a refusal).
    fn sign(&mut self, req: &HsmRequest) -> Result<Vec<u8>, String> {
        if req.raw.len() >= 2 && u16::from_be_bytes([req.raw[0], req.raw[1]]) == SIGN_MESSAGE {
            return Err("policy: a node may not ask its signer to sign a message".into());
        }
        let message = msgs::from_vec(req.raw.clone())
            .map_err(|e| format!("policy: the request does not parse: {e:?}"))?;
        refuse_disguised_message_signing(&message)?;
        let now_ms = crate::signed_request::now_ms();
        let marks = &self.marks;
        let approvals = approvals::Approvals::from_requests(
            &req.requests,
            self.network,
            &approvals::Authority {
                runes: &self.runes,
                revoked: &self.revoked,
            },
            now_ms,
            |id| marks.is_spent(id),
        );
        // The Pay request that approves this payment: spent once the approval is given, so
        // a node that kept it cannot have a second payment approved by it.
        let paying = match &message {
            Message::PreapproveInvoice(m) => {
                Some(approvals.check_bolt11(&String::from_utf8_lossy(&m.invstring.0))?)
            }
            _ => None,
        };

        let approver = approvals::RequestApprover::new(approvals, self.approver.clone());
        let init = matches!(message, Message::HsmdInit2(_));
        // Taken out: it is put back only if this request commits.
        let kept = if init { None } else { self.kept.take() };
        let persister = match &kept {
            Some(k) => k.persister.clone(),
            None => Arc::new(KVVPersister(
                CloudKVVStore::new(self.local.clone()),
                JsonFormat,
            )),
        };
        lightning_signer::persist::Persist::enter(&*persister)
            .map_err(|e| format!("temporary: cannot start a state transaction: {e:?}"))?;
        // VLS panics on some malformed requests (short gossip payloads, say): a panic is a
        // refusal, and dropping the transaction abandons whatever it logged.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match kept {
            Some(k) => {
                k.approver.set(approver);
                let reply = Self::dispatch(&k.root, message, req);
                reply.map(|r| (r, Some(k)))
            }
            None => self.handle_in_transaction(persister.clone(), message, req, approver),
        }))
        .unwrap_or_else(|_| Err("policy: the signer could not handle this request".into()));
        // The changes themselves are read back from the local store once committed
        // (`news_for_node`), together with any the node has not stored yet.
        let _changes = lightning_signer::persist::Persist::prepare(&*persister);
        match result {
            Ok((reply, kept)) => {
                let mut used = kept
                    .as_ref()
                    .map(|k| k.approver.take_used())
                    .unwrap_or_default();
                used.extend(paying);
                lightning_signer::persist::Persist::commit(&*persister)
                    .map_err(|e| format!("temporary: cannot commit signer state: {e:?}"))?;
                self.kept = kept;
                // A device request approves one spend (a payment, or a transaction's
                // outputs): recorded before the answer leaves, so it approves no other.
                let horizon = now_ms.saturating_sub(2 * approvals::WINDOW.as_millis() as u64);
                self.marks
                    .spend(&used, horizon)
                    .map_err(|e| format!("temporary: cannot record the approval used: {e}"))?;
                Ok(reply)
            }
            // Dropping the transaction abandons whatever it logged; the handler goes with
            // it.
            Err(e) => Err(e),
        }
    }

    /// Builds a handler from the state (through `persister`) and handles `message` with
    /// it; the handler comes back to be kept, but for an init.
    fn handle_in_transaction(
        &self,
        persister: Arc<Persister>,
        message: Message,
        req: &HsmRequest,
        approver: approvals::RequestApprover,
    ) -> Result<(Vec<u8>, Option<Kept>), String> {
        let policy = make_simple_policy(self.network, Default::default());
        let services = NodeServices {
            // The strict validator: VLS's policy checks, and on-chain ones against the chain
            // the node proves to the signer (a channel's funding must be buried before it
            // is used, say).
            validator_factory: Arc::new(OnchainValidatorFactory::new_with_simple_factory(
                SimpleValidatorFactory::new_with_policy(policy),
            )),
            starting_time_factory: ClockStartingTimeFactory::new(),
            persister: persister.clone(),
            clock: Arc::new(StandardClock()),
            trusted_oracle_pubkeys: vec![],
        };
        let approver = Arc::new(approvals::CurrentApprover::new(approver));
        let mut init = HandlerBuilder::new(self.network, 0, services, self.seed)
            .approver(approver.clone())
            .build()
            .map_err(describe)?;
        // A fresh handler is initialised: the node's own HsmdInit2 is answered by it; any
        // other request is preceded by an init of our own.
        let init_msg = match &message {
            Message::HsmdInit2(m) => HsmdInit2 {
                derivation_style: m.derivation_style,
                network_name: WireString(m.network_name.0.clone()),
                dev_seed: None,
                dev_allowlist: Array::new(),
            },
            _ => HsmdInit2 {
                derivation_style: 0,
                network_name: WireString(self.network.to_string().into_bytes()),
                dev_seed: None,
                dev_allowlist: Array::new(),
            },
        };
        let (_, init_reply) = init
            .handle(Message::HsmdInit2(init_msg))
            .map_err(describe)?;
        if matches!(message, Message::HsmdInit2(_)) {
            return init_reply
                .map(|r| (r.as_vec(), None))
                .ok_or_else(|| "policy: the init produced no reply".to_string());
        }
        let root: RootHandler = init.into();
        let reply = Self::dispatch(&root, message, req)?;
        Ok((
            reply,
            Some(Kept {
                root,
                persister,
                approver,
            }),
        ))
    }

    /// Handles `message` with `root`: as the channel the request's context names, or as
    /// the node.
    fn dispatch(root: &RootHandler, message: Message, req: &HsmRequest) -> Result<Vec<u8>, String> {
        let reply = match &req.context {
            Some(ctx) if ctx.dbid > 0 => {
                let peer: [u8; 33] =
                    ctx.node_id.clone().try_into().map_err(|_| {
                        "policy: the request context has no valid peer id".to_string()
                    })?;
                root.for_new_client(0, PubKey(peer), ctx.dbid)
                    .handle(message)
            }
            _ => root.handle(message),
        };
        reply.map(|r| r.as_vec()).map_err(describe)
    }
}

fn describe(e: HandlerError) -> String {
    match e {
        HandlerError::Temporary(s) => format!("temporary: {}", s.message()),
        HandlerError::Signing(s) => format!("policy: {}", s.message()),
        HandlerError::Protocol(p) => format!("policy: protocol error: {p:?}"),
    }
}

#[cfg(test)]
mod tests;
