//! The signer: VLS validates and signs each request a node sends.
//!
//! The node keeps the signer's state and ships it; each request is handled as
//! enter → build the handler from the state → handle → prepare, and the answer carries
//! every entry the node does not have yet (this request's changes, and any earlier ones the
//! node failed to store). A fresh VLS init handler is made for every request, so a node that
//! restarts or reconnects (and initialises again) never meets a handler that has already
//! been initialised: upstream panics on a second init.

mod store;

use std::collections::BTreeMap;
use std::sync::Arc;

use bitcoin::Network;
use lightning_signer::node::NodeServices;
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
use store::SharedStore;

/// hsmd message type of `SignMessage`: a node may not ask for one (it would let the node
/// prove the node key, e.g. to the scheduler).
const SIGN_MESSAGE: u16 = 23;

/// A signer for one node.
pub struct Signer {
    seed: [u8; 32],
    network: Network,
    approver: Arc<dyn Approve>,
    local: SharedStore,
    /// The version of each entry the node is known to hold.
    node_has: BTreeMap<String, u64>,
}

impl Signer {
    /// A signer with `secret`, approving no payment by itself (strict default).
    pub fn new(secret: &HsmSecret, network: Network) -> Self {
        let signer_id: [u8; 16] = secret.bytes()[..16].try_into().expect("16 bytes");
        Signer {
            seed: *secret.bytes(),
            network,
            approver: Arc::new(NegativeApprover()),
            local: SharedStore(Arc::new(MemoryKVVStore::new(signer_id))),
            node_has: BTreeMap::new(),
        }
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
        }
    }

    /// Handles one request; never panics on what the node sends.
    pub fn handle(&mut self, req: &HsmRequest) -> HsmResponse {
        let mut response = HsmResponse {
            request_id: req.request_id,
            ..Default::default()
        };
        if let Err(e) = self.merge(&req.signer_state) {
            response.error = format!("temporary: cannot merge the node's signer state: {e}");
            return response;
        }
        match self.sign(req) {
            Ok(raw) => response.raw = raw,
            Err(error) => response.error = error,
        }
        response.signer_state = self.news_for_node();
        response
    }

    /// Takes the node's entries that are newer than ours.
    fn merge(&mut self, entries: &[SignerStateEntry]) -> Result<(), String> {
        let mut newer = Vec::new();
        for e in entries {
            let v = self.node_has.entry(e.key.clone()).or_default();
            *v = (*v).max(e.version);
            let ours = self
                .local
                .get_version(&e.key)
                .map_err(|e| format!("{e:?}"))?;
            if ours.is_none_or(|o| o < e.version) {
                newer.push(KVV(e.key.clone(), (e.version, e.value.clone())));
            }
        }
        if newer.is_empty() {
            return Ok(());
        }
        self.local.put_batch(newer).map_err(|e| format!("{e:?}"))
    }

    /// Every local entry the node does not hold at this version.
    fn news_for_node(&self) -> Vec<SignerStateEntry> {
        let Ok(all) = self.local.get_prefix("") else {
            return vec![];
        };
        all.filter(|kvv| self.node_has.get(&kvv.0).is_none_or(|v| *v < kvv.1.0))
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
    fn sign(&self, req: &HsmRequest) -> Result<Vec<u8>, String> {
        if req.raw.len() >= 2 && u16::from_be_bytes([req.raw[0], req.raw[1]]) == SIGN_MESSAGE {
            return Err("policy: a node may not ask its signer to sign a message".into());
        }
        let message = msgs::from_vec(req.raw.clone())
            .map_err(|e| format!("policy: the request does not parse: {e:?}"))?;

        let persister = Arc::new(KVVPersister(
            CloudKVVStore::new(self.local.clone()),
            JsonFormat,
        ));
        lightning_signer::persist::Persist::enter(&*persister)
            .map_err(|e| format!("temporary: cannot start a state transaction: {e:?}"))?;
        let result = self.handle_in_transaction(persister.clone(), message, req);
        // The changes themselves are read back from the local store once committed
        // (`news_for_node`), together with any the node has not stored yet.
        let _changes = lightning_signer::persist::Persist::prepare(&*persister);
        match result {
            Ok(reply) => {
                lightning_signer::persist::Persist::commit(&*persister)
                    .map_err(|e| format!("temporary: cannot commit signer state: {e:?}"))?;
                Ok(reply)
            }
            // Dropping the transaction abandons whatever it logged.
            Err(e) => Err(e),
        }
    }

    fn handle_in_transaction(
        &self,
        persister: Arc<KVVPersister<CloudKVVStore<SharedStore>, JsonFormat>>,
        message: Message,
        req: &HsmRequest,
    ) -> Result<Vec<u8>, String> {
        let policy = make_simple_policy(self.network, Default::default());
        let services = NodeServices {
            validator_factory: Arc::new(SimpleValidatorFactory::new_with_policy(policy)),
            starting_time_factory: ClockStartingTimeFactory::new(),
            persister,
            clock: Arc::new(StandardClock()),
            trusted_oracle_pubkeys: vec![],
        };
        let mut init = HandlerBuilder::new(self.network, 0, services, self.seed)
            .approver(self.approver.clone())
            .build()
            .map_err(describe)?;
        // Every request meets a fresh, initialised handler: the node's own HsmdInit2 is
        // answered by it; any other request is preceded by an init of our own.
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
                .map(|r| r.as_vec())
                .ok_or_else(|| "policy: the init produced no reply".to_string());
        }
        let root: RootHandler = init.into();
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
