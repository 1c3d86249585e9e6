//! What the tenant's devices asked for, as the signer checks it.
//!
//! Each signing request carries the client requests the node received recently, each signed
//! by a device key (P-256 over the gRPC frame ‖ u64be timestamp) and carrying the device's
//! rune. The signer approves a payment only when a `Pay` request among them names the same
//! invoice and passes every check the signer can make itself, trusting nothing node-host
//! says: the signature verifies under the request's key; the rune is one this seed minted,
//! bound to that key and allowing the call (method, time); the timestamp is within
//! [`WINDOW`] of the signer's own clock. A node-host that signs a request with a key of its
//! own has no rune for that key: only the seed can mint one.
//!
//! A request approves one spend: a `Pay` request the payment of its invoice once, a
//! `Withdraw` request one output of one transaction. The signer records a request that
//! approved a spend in the device's marks, durably, before the answer leaves, and counts it
//! for nothing after.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine;
use bitcoin::hashes::Hash;
use bitcoin::{Address, Network, ScriptBuf, Transaction, TxOut};
use lightning_signer::invoice::{Invoice, InvoiceAttributes};
use lightning_signer::lightning::types::payment::PaymentHash;
use lightning_signer::lightning_invoice::Bolt11Invoice;
use prost::Message;
use skylight_proto::greenlight::PendingRequest;
use vls_protocol_signer::approver::Approve;

use crate::runes::{RuneContext, RuneMaster};

/// The gRPC path of CLN's `Pay`.
pub const PAY_PATH: &str = "/cln.Node/Pay";
/// The gRPC path of CLN's `Withdraw`.
pub const WITHDRAW_PATH: &str = "/cln.Node/Withdraw";

/// How far a signed request's timestamp may be from the signer's clock.
pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(300);

/// Payments the devices asked for in the requests that came with one signing request.
#[derive(Debug, Default, Clone)]
pub struct Approvals {
    /// Invoices named by `Pay` requests that count, each with the first such request (id,
    /// when signed): a payment approved spends it.
    invoices: HashMap<[u8; 32], ([u8; 32], u64)>,
    /// Invoices named by `Pay` requests that fail a check, with why: told apart so that a
    /// refusal says what was wrong with the request rather than that there was none.
    unverified_invoices: HashMap<[u8; 32], String>,
    /// Destinations and amounts (sat) of signed `Withdraw` requests not used yet, one
    /// entry per request: each approves one output of one transaction.
    withdrawals: Vec<Withdrawal>,
}

/// One signed `Withdraw` request.
#[derive(Debug, Clone)]
struct Withdrawal {
    script: ScriptBuf,
    sat: u64,
    /// The request's id (see [`request_id`]) and when it was signed (ms).
    id: [u8; 32],
    signed_ms: u64,
}

/// A shipped request's identity (see [`crate::signed_request::request_id`]).
pub fn request_id(r: &PendingRequest) -> [u8; 32] {
    crate::signed_request::request_id(&r.pubkey, &r.request, r.timestamp)
}

/// What a request's device is checked against: the runes this seed mints, and the devices
/// revoked.
pub struct Authority<'a> {
    /// The seed's master rune.
    pub runes: &'a RuneMaster,
    /// The revoked device keys.
    pub revoked: &'a super::revoked::RevokedKeys,
}

impl Approvals {
    /// Reads the signed requests; those that fail a check (see the module) are ignored.
    /// `now_ms` is the signer's clock.
    /// `spent` tells the requests that approved a spend already.
    pub fn from_requests(
        requests: &[PendingRequest],
        network: Network,
        authority: &Authority<'_>,
        now_ms: u64,
        spent: impl Fn(&[u8; 32]) -> bool,
    ) -> Self {
        let mut invoices = HashMap::new();
        let mut withdrawals = Vec::new();
        for r in requests
            .iter()
            .filter(|r| r.uri == WITHDRAW_PATH && refusal(r, authority, now_ms).is_none())
        {
            let id = request_id(r);
            if spent(&id) || withdrawals.iter().any(|w: &Withdrawal| w.id == id) {
                continue;
            }
            let Some(w) = r
                .request
                .get(5..)
                .and_then(|m| skylight_proto::cln::WithdrawRequest::decode(m).ok())
            else {
                continue;
            };
            let amount = match w.satoshi.and_then(|a| a.value) {
                Some(skylight_proto::cln::amount_or_all::Value::Amount(a)) => a.msat / 1000,
                _ => continue,
            };
            if let Ok(address) =
                Address::from_str(w.destination.trim()).map(|a| a.require_network(network))
                && let Ok(address) = address
            {
                withdrawals.push(Withdrawal {
                    script: address.script_pubkey(),
                    sat: amount,
                    id,
                    signed_ms: r.timestamp,
                });
            }
        }
        let mut unverified_invoices = HashMap::new();
        for r in requests.iter().filter(|r| r.uri == PAY_PATH) {
            // The signed body is the gRPC frame: a flag byte, a length, the message.
            let Some(message) = r.request.get(5..) else {
                continue;
            };
            let Ok(pay) = skylight_proto::cln::PayRequest::decode(message) else {
                continue;
            };
            if let Ok(invoice) = Bolt11Invoice::from_str(pay.bolt11.trim()) {
                let hash = invoice.payment_hash().to_byte_array();
                let id = request_id(r);
                let why = refusal(r, authority, now_ms)
                    .or_else(|| spent(&id).then(|| "it approved a payment already".to_string()));
                match why {
                    None => {
                        invoices.entry(hash).or_insert((id, r.timestamp));
                    }
                    Some(why) => {
                        unverified_invoices.insert(hash, why);
                    }
                }
            }
        }
        Approvals {
            invoices,
            unverified_invoices,
            withdrawals,
        }
    }

    /// Approves paying the invoice `bolt11` when a signed `Pay` request names it; otherwise
    /// the refusal's reason.
    pub fn check_bolt11(&self, bolt11: &str) -> Result<([u8; 32], u64), String> {
        let hash = Bolt11Invoice::from_str(bolt11.trim())
            .map_err(|e| format!("policy: the invoice does not parse: {e}"))?
            .payment_hash()
            .to_byte_array();
        if let Some(used) = self.invoices.get(&hash) {
            Ok(*used)
        } else if let Some(why) = self.unverified_invoices.get(&hash) {
            Err(format!(
                "policy: the Pay request naming this invoice counts for nothing: {why}"
            ))
        } else {
            Err("policy: no Pay request signed by a device of this node names this invoice".into())
        }
    }

    fn allows(&self, hash: &PaymentHash) -> bool {
        self.invoices.contains_key(&hash.0)
    }
}

/// Why the signed request `r` counts for nothing, if it does not count.
fn refusal(r: &PendingRequest, authority: &Authority<'_>, now_ms: u64) -> Option<String> {
    let runes = authority.runes;
    if authority.revoked.contains(&r.pubkey) {
        return Some("its device was revoked".into());
    }
    if !crate::signed_request::verifies(&r.pubkey, &r.request, r.timestamp, &r.signature) {
        return Some(
            "it does not verify against its device signature (altered after it was signed, \
             or signed by another key)"
                .into(),
        );
    }
    let skew = r.timestamp.abs_diff(now_ms);
    if skew > WINDOW.as_millis() as u64 {
        return Some(format!(
            "it was signed {} s away from the signer's clock (at most {} s)",
            skew / 1000,
            WINDOW.as_secs()
        ));
    }
    if r.rune.is_empty() {
        return Some("it carries no rune".into());
    }
    // node-host keeps the rune as bytes (decoded from `glrune`, as Greenlight's node does).
    let rune = base64::engine::general_purpose::URL_SAFE.encode(&r.rune);
    let call = RuneContext {
        uri: r.uri.clone(),
        pubkey: r.pubkey.clone(),
        time: r.timestamp / 1000,
    };
    runes.check(&rune, &call).err().map(|e| {
        format!(
            "its rune does not allow it ({e}): only runes this seed minted for the signing key do"
        )
    })
}

/// VLS's approver for one signing request: what the devices asked for, else `fallback`.
pub struct RequestApprover {
    /// The devices' requests.
    pub approvals: Approvals,
    /// Consulted for anything they did not ask for.
    pub fallback: Arc<dyn Approve>,
    /// The withdrawals an approval used (id, when signed): the signer records them as
    /// spent once the signature is made.
    pub used: std::sync::Mutex<Vec<([u8; 32], u64)>>,
}

impl RequestApprover {
    /// What the devices asked for, else `fallback`.
    pub fn new(approvals: Approvals, fallback: Arc<dyn Approve>) -> Self {
        RequestApprover {
            approvals,
            fallback,
            used: Default::default(),
        }
    }
}

impl Approve for RequestApprover {
    fn approve_invoice(&self, invoice: &Invoice) -> bool {
        self.approvals.allows(&invoice.payment_hash()) || self.fallback.approve_invoice(invoice)
    }

    fn approve_keysend(&self, payment_hash: PaymentHash, amount_msat: u64) -> bool {
        self.fallback.approve_keysend(payment_hash, amount_msat)
    }

    fn approve_onchain(&self, tx: &Transaction, prev_outs: &[TxOut], unknown: &[usize]) -> bool {
        // Each output nobody else vouches for needs a signed Withdraw of its own: the
        // outputs are matched as a multiset, one request each.
        let mut taken: Vec<usize> = Vec::new();
        let asked = unknown.iter().all(|i| {
            let Some(o) = tx.output.get(*i) else {
                return false;
            };
            let found = self
                .approvals
                .withdrawals
                .iter()
                .enumerate()
                .find(|(n, w)| {
                    !taken.contains(n) && w.script == o.script_pubkey && w.sat == o.value.to_sat()
                })
                .map(|(n, _)| n);
            found.map(|n| taken.push(n)).is_some()
        });
        if asked && !unknown.is_empty() {
            let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
            used.extend(taken.iter().map(|n| {
                (
                    self.approvals.withdrawals[*n].id,
                    self.approvals.withdrawals[*n].signed_ms,
                )
            }));
            return true;
        }
        self.fallback.approve_onchain(tx, prev_outs, unknown)
    }
}

impl lightning_signer::SendSync for RequestApprover {}

/// The approver of a handler kept across requests: each request's own
/// [`RequestApprover`], put in before the request is handled.
pub struct CurrentApprover(std::sync::Mutex<RequestApprover>);

impl CurrentApprover {
    /// Starts with `first`.
    pub fn new(first: RequestApprover) -> Self {
        CurrentApprover(std::sync::Mutex::new(first))
    }

    /// The approver of the request about to be handled.
    pub fn set(&self, approver: RequestApprover) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = approver;
    }

    fn with<R>(&self, f: impl FnOnce(&RequestApprover) -> R) -> R {
        f(&self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The withdrawals the request just handled used (see [`RequestApprover::used`]).
    pub fn take_used(&self) -> Vec<([u8; 32], u64)> {
        self.with(|a| std::mem::take(&mut *a.used.lock().unwrap_or_else(|p| p.into_inner())))
    }
}

impl Approve for CurrentApprover {
    fn approve_invoice(&self, invoice: &Invoice) -> bool {
        self.with(|a| a.approve_invoice(invoice))
    }

    fn approve_keysend(&self, payment_hash: PaymentHash, amount_msat: u64) -> bool {
        self.with(|a| a.approve_keysend(payment_hash, amount_msat))
    }

    fn approve_onchain(&self, tx: &Transaction, prev_outs: &[TxOut], unknown: &[usize]) -> bool {
        self.with(|a| a.approve_onchain(tx, prev_outs, unknown))
    }
}

impl lightning_signer::SendSync for CurrentApprover {}
