//! What the scheduler keeps, as one set of traits every backend implements: the embedded
//! redb database on one machine ([`super::RedbStore`]) and PostgreSQL for replicas that
//! share one database. Each method is one transaction: what belongs together commits
//! together or not at all, and a check that guards a write (an invite code unredeemed, a
//! tenant count under its cap) is made inside that write's transaction. The methods block:
//! call them from `spawn_blocking`.

use std::ops::RangeInclusive;

use super::records::*;
use super::webhooks::{DeliveryKey, NewEvent};
use super::{NewTenant, TenantListing};
use crate::error::Error;

/// Tenants, their CAs and devices, invite codes and signer reports.
pub trait Tenants {
    /// Registers a tenant. With `invite`, the code must exist and be unredeemed, and is
    /// redeemed in the same transaction. `share` fresh codes are given to the new tenant.
    /// Returns those codes.
    fn register(
        &self,
        tenant: NewTenant,
        invite: Option<&str>,
        share: u32,
    ) -> Result<Vec<String>, Error> {
        self.register_within(tenant, invite, share, u64::MAX)
    }

    /// [`Tenants::register`], refused if `max_tenants` are registered already (counted in
    /// the same transaction, so concurrent registrations cannot pass it together).
    fn register_within(
        &self,
        tenant: NewTenant,
        invite: Option<&str>,
        share: u32,
        max_tenants: u64,
    ) -> Result<Vec<String>, Error>;

    /// The tenant, if registered.
    fn tenant(&self, node_id: &[u8; 33]) -> Result<Option<TenantRecord>, Error>;

    /// Whether any tenant is registered.
    fn has_tenants(&self) -> Result<bool, Error>;

    /// How many tenants are registered (the operator's metrics).
    fn tenant_count(&self) -> Result<u64, Error>;

    /// Every tenant, with how many device certificates each was issued and its export, if
    /// it has one.
    fn tenants(&self) -> Result<Vec<TenantListing>, Error>;

    /// The tenant's CA.
    fn tenant_ca(&self, node_id: &[u8; 33]) -> Result<Option<TenantCaRecord>, Error>;

    /// Records a device certificate issued to a registered tenant.
    fn add_device(
        &self,
        node_id: &[u8; 33],
        device: &str,
        record: &DeviceRecord,
    ) -> Result<(), Error>;

    /// The device certificates issued to a tenant, by device name.
    fn devices(&self, node_id: &[u8; 33]) -> Result<Vec<(String, DeviceRecord)>, Error>;

    /// Revokes the device `name` of a tenant at `now` (unix seconds); revoking it again
    /// keeps the first time. Returns its record.
    fn revoke_device(
        &self,
        node_id: &[u8; 33],
        name: &str,
        now: u64,
    ) -> Result<DeviceRecord, Error>;

    /// Every revoked device: tenant and name.
    fn revoked_devices(&self) -> Result<Vec<([u8; 33], String)>, Error>;

    /// Records what a signer said in `MaybeUpgrade`; returns the version it replaces.
    fn upgrade_signer(
        &self,
        node_id: &[u8; 33],
        version: &str,
        startup_msgs: Option<Vec<(String, String)>>,
    ) -> Result<String, Error>;

    /// Mints `count` operator invite codes.
    fn create_invites(&self, count: u32) -> Result<Vec<String>, Error>;

    /// Whether `code` exists and is unredeemed: a cheap look before the expensive work of
    /// a registration. The registration's own transaction decides for good.
    fn invite_usable(&self, code: &str) -> Result<(), Error>;

    /// Every invite code.
    fn invites(&self) -> Result<Vec<(String, InviteRecord)>, Error>;

    /// The invite codes given to a tenant, with whether each was redeemed.
    fn invites_owned_by(&self, node_id: &[u8; 33]) -> Result<Vec<(String, bool)>, Error>;

    /// Stores a signer rejection report, keeping only the newest `keep`; returns its
    /// sequence number.
    fn add_rejection(&self, record: &RejectionRecord, keep: u64) -> Result<u64, Error>;

    /// Every signer rejection report, oldest first.
    fn rejections(&self) -> Result<Vec<RejectionRecord>, Error>;
}

/// Tenants' exports. The record is written first, in its own transaction, before
/// anything of the export is done: from that commit on the tenant's node never starts again.
pub trait Exports {
    /// Marks the tenant `Exporting` with `token` as its download token, unless it has an
    /// export already (returned as it is: asking twice never starts a second export).
    fn begin_export(&self, node_id: &[u8; 33], token: &str) -> Result<ExportRecord, Error>;

    /// The tenant's export, if it has one.
    fn export(&self, node_id: &[u8; 33]) -> Result<Option<ExportRecord>, Error>;

    /// Every export, by tenant.
    fn exports(&self) -> Result<Vec<([u8; 33], ExportRecord)>, Error>;

    /// Changes the tenant's export with `change`; returns it as stored.
    fn update_export(
        &self,
        node_id: &[u8; 33],
        change: &(dyn Fn(&mut ExportRecord) + Sync),
    ) -> Result<ExportRecord, Error>;
}

/// Each tenant's Lightning port, from the operator's range: given once and kept, so the
/// node is found where its channel peers last saw it, and never shared between tenants.
pub trait Ports {
    /// The tenant's port in `range`: the one it was given, or the lowest no other tenant
    /// holds (a tenant whose port is outside a changed range gets a new one).
    fn p2p_port(&self, node_id: &[u8; 33], range: RangeInclusive<u16>) -> Result<u16, Error>;
}

/// Tenants' outgoing webhooks, the events node-hosts raised and the deliveries still to
/// make. An event is stored with one delivery per webhook of its tenant in one transaction,
/// and only then acknowledged to the node-host; a delivery leaves the queue only in the
/// transaction that records its outcome.
pub trait Webhooks {
    /// Adds a webhook for the tenant; its id. Refused beyond
    /// [`MAX_WEBHOOKS_PER_TENANT`](super::webhooks::MAX_WEBHOOKS_PER_TENANT).
    fn add_webhook(&self, node_id: &[u8; 33], uri: &str, secret: &str) -> Result<u64, Error>;

    /// The tenant's webhooks, oldest first.
    fn webhooks_of(&self, node_id: &[u8; 33]) -> Result<Vec<(u64, WebhookRecord)>, Error>;

    /// The webhook, if it exists.
    fn webhook(&self, id: u64) -> Result<Option<WebhookRecord>, Error>;

    /// Every webhook's id.
    fn webhook_ids(&self) -> Result<Vec<u64>, Error>;

    /// Deletes the tenant's webhooks `ids` and what was still to be delivered to them. Every
    /// id must be the tenant's, or nothing is deleted.
    fn delete_webhooks(&self, node_id: &[u8; 33], ids: &[u64]) -> Result<(), Error>;

    /// Gives the tenant's webhook `id` a new secret: later deliveries are signed with it.
    fn rotate_webhook_secret(&self, node_id: &[u8; 33], id: u64, secret: &str)
    -> Result<(), Error>;

    /// Stores events of the tenant, each with a delivery due at `now_ms` for every webhook
    /// the tenant has, in one transaction. Events stored before (a node-host sends what it
    /// was not told was stored) are skipped. Returns how many were new, and the webhooks
    /// that got deliveries.
    fn store_events(
        &self,
        node_id: &[u8; 33],
        events: &[NewEvent],
        now_ms: u64,
    ) -> Result<(u32, Vec<u64>), Error>;

    /// Whether the tenant's event `event_id` was stored.
    fn has_event(&self, node_id: &[u8; 33], event_id: &str) -> Result<bool, Error>;

    /// Up to `limit` of the webhook's deliveries due by `now_ms`, the earliest first.
    fn due_deliveries(
        &self,
        webhook: u64,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<(DeliveryKey, DeliveryRecord)>, Error>;

    /// When the webhook's next delivery is due (unix ms), if it has one.
    fn next_due(&self, webhook: u64) -> Result<Option<u64>, Error>;

    /// Up to `limit` deliveries still to make, to every webhook, the earliest due first.
    fn pending_deliveries(&self, limit: usize)
    -> Result<Vec<(DeliveryKey, DeliveryRecord)>, Error>;

    /// How many deliveries are still to make, to every webhook.
    fn queued_deliveries(&self) -> Result<u64, Error>;

    /// Records a delivery's outcome: `None` delivered (it leaves the queue), `Some(due_ms)`
    /// to be tried again then. A delivery no longer queued (its webhook was deleted
    /// meanwhile) stays gone.
    fn delivery_attempted(
        &self,
        key: DeliveryKey,
        record: &DeliveryRecord,
        again_at: Option<u64>,
    ) -> Result<(), Error>;

    /// Gives a delivery up: it leaves the queue for the failed list the operator reads.
    fn delivery_failed(
        &self,
        key: DeliveryKey,
        record: &DeliveryRecord,
        uri: &str,
    ) -> Result<(), Error>;

    /// Every delivery given up, oldest first.
    fn failed_deliveries(&self) -> Result<Vec<FailedDeliveryRecord>, Error>;
}

/// Facts of the whole deployment, made once by whichever scheduler comes first.
pub trait Deployment {
    /// Stores `value` under `key` unless a value is there already; returns the one stored
    /// (`value`, or the earlier one), so that racing replicas all end with the same.
    fn share_once(&self, key: &str, value: &str) -> Result<String, Error>;
}

/// Everything the scheduler keeps, in one backend.
pub trait Backend: Tenants + Exports + Ports + Webhooks + Deployment + Send + Sync {}

impl<T: Tenants + Exports + Ports + Webhooks + Deployment + Send + Sync> Backend for T {}
