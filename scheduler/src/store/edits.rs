//! What each write does to its records, and what a refused one says: one piece for every
//! backend, which only reads and stores the records.

use std::ops::RangeInclusive;

use super::NewTenant;
use super::now;
use super::records::*;
use super::webhooks::{MAX_WEBHOOKS_PER_TENANT, NewEvent};
use crate::error::Error;

pub(super) fn not_registered(node_id: &[u8; 33]) -> Error {
    Error::NotFound(format!("node {} is not registered", hex::encode(node_id)))
}

pub(super) fn already_registered(tenant: &NewTenant) -> Error {
    Error::AlreadyExists(format!(
        "node {} is already registered; use recover to get a new device certificate",
        tenant.record.node_id
    ))
}

/// The tenant cap reached (counted for the operator's metrics).
pub(super) fn too_many_tenants(max_tenants: u64) -> Error {
    crate::metrics::refused("tenants");
    Error::ResourceExhausted(format!(
        "this scheduler has as many tenants as its operator allows ({max_tenants}); \
         ask the operator, or register elsewhere"
    ))
}

pub(super) fn unknown_invite(code: &str) -> Error {
    Error::NotFound(format!(
        "invite code {code:?} does not exist; check it or ask for another"
    ))
}

pub(super) fn used_invite(code: &str) -> Error {
    Error::FailedPrecondition(format!(
        "invite code {code:?} has already been used; ask for another"
    ))
}

/// A new unredeemed code's record, given to `owner` (hex node id) or the operator's.
pub(super) fn new_invite(owner: Option<&str>) -> InviteRecord {
    InviteRecord {
        owner: owner.map(str::to_string),
        created_at: now(),
        redeemed_by: None,
        redeemed_at: None,
    }
}

/// Redeems the code `code` whose record is `record` for the tenant `by` (hex node id).
pub(super) fn redeem(record: &mut InviteRecord, code: &str, by: &str) -> Result<(), Error> {
    if record.redeemed_by.is_some() {
        return Err(used_invite(code));
    }
    record.redeemed_by = Some(by.to_string());
    record.redeemed_at = Some(now());
    Ok(())
}

pub(super) fn no_such_device(node_id: &[u8; 33], name: &str) -> Error {
    Error::NotFound(format!(
        "node {} has no device named {name:?}",
        hex::encode(node_id)
    ))
}

/// Revokes the device at `now` unless it was revoked before (the first time is kept);
/// whether the record changed.
pub(super) fn revoke(record: &mut DeviceRecord, now: u64) -> bool {
    if record.revoked_at.is_some() {
        return false;
    }
    record.revoked_at = Some(now);
    true
}

/// Records what a signer said in `MaybeUpgrade`; returns the version it replaces.
pub(super) fn upgrade(
    record: &mut TenantRecord,
    version: &str,
    startup_msgs: Option<Vec<(String, String)>>,
) -> String {
    let old = record.signer_version.clone();
    if !version.is_empty() {
        record.signer_version = version.to_string();
    }
    if let Some(msgs) = startup_msgs {
        record.startup_msgs = msgs;
    }
    record.upgraded_at = Some(now());
    old
}

/// An export begun now, downloaded with `token`.
pub(super) fn new_export(token: &str) -> ExportRecord {
    ExportRecord {
        state: ExportState::Exporting,
        token: token.to_string(),
        started_at: now(),
        finished_at: None,
        size: None,
        sha256: None,
        deleted_at: None,
    }
}

pub(super) fn no_export(node_id: &[u8; 33]) -> Error {
    super::storage(format!("no export of {} to update", hex::encode(node_id)))
}

pub(super) fn ports_exhausted(range: &RangeInclusive<u16>) -> Error {
    Error::ResourceExhausted(format!(
        "every Lightning port of {}-{} is given to a tenant: the operator must \
         widen --node-p2p-ports",
        range.start(),
        range.end()
    ))
}

pub(super) fn too_many_webhooks() -> Error {
    Error::ResourceExhausted(format!(
        "this node has {MAX_WEBHOOKS_PER_TENANT} webhooks, the most it may have; \
         delete one (DeleteWebhooks) before adding another"
    ))
}

pub(super) fn not_yours(id: u64) -> Error {
    Error::NotFound(format!(
        "webhook {id} is not one of this node's webhooks (ListOutgoingWebhooks shows them)"
    ))
}

/// A new webhook of the tenant `node_id`.
pub(super) fn new_webhook(node_id: &[u8; 33], uri: &str, secret: &str) -> WebhookRecord {
    WebhookRecord {
        node_id: hex::encode(node_id),
        uri: uri.to_string(),
        secret: secret.to_string(),
        created_at: now(),
        rotated_at: None,
    }
}

/// Gives the webhook `id` (whose record is `record`) of the tenant `node_id` a new
/// secret; another tenant's is refused as not found.
pub(super) fn rotate(
    record: &mut WebhookRecord,
    node_id: &[u8; 33],
    id: u64,
    secret: &str,
) -> Result<(), Error> {
    if record.node_id != hex::encode(node_id) {
        return Err(not_yours(id));
    }
    record.secret = secret.to_string();
    record.rotated_at = Some(now());
    Ok(())
}

/// An event stored now, with a delivery for each of `deliveries` webhooks.
pub(super) fn new_event(event: &NewEvent, deliveries: usize) -> EventRecord {
    EventRecord {
        event_type: event.event_type.clone(),
        stored_at: now(),
        deliveries: deliveries as u32,
    }
}

/// The delivery of the tenant's (hex `node_hex`) event, not yet attempted: the same for
/// every webhook.
pub(super) fn new_delivery(node_hex: &str, event: &NewEvent) -> DeliveryRecord {
    DeliveryRecord {
        node_id: node_hex.to_string(),
        event_id: event.event_id.clone(),
        event_type: event.event_type.clone(),
        body: event.body.clone(),
        attempts: 0,
        last_error: None,
    }
}

/// The delivery `record` to the webhook `webhook` at `uri`, given up now.
pub(super) fn given_up(webhook: u64, uri: &str, record: &DeliveryRecord) -> FailedDeliveryRecord {
    FailedDeliveryRecord {
        webhook_id: webhook,
        uri: uri.to_string(),
        delivery: record.clone(),
        failed_at: now(),
    }
}
