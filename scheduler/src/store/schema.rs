//! The on-disk schema: every redb table the scheduler keeps, in one place.
//!
//! Values are JSON (see `records.rs`) so the database can be inspected and so records can
//! gain fields without a migration: new fields must be `#[serde(default)]`.

use redb::{MultimapTableDefinition, TableDefinition};

/// Schema version, stored under [`META`] / [`SCHEMA_VERSION_KEY`].
pub const SCHEMA_VERSION: u64 = 1;
/// Key of the schema version in [`META`].
pub const SCHEMA_VERSION_KEY: &str = "schema_version";

/// Database-wide facts: `schema_version`, `network`.
pub const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
/// Key of the network in [`META`]: a database serves one network for its whole life.
pub const NETWORK_KEY: &str = "network";

/// Tenants: 33-byte node id → `TenantRecord`.
pub const TENANTS: TableDefinition<&[u8], &str> = TableDefinition::new("tenants");
/// Each tenant's CA: 33-byte node id → `TenantCaRecord` (holds the CA's private key).
pub const TENANT_CAS: TableDefinition<&[u8], &str> = TableDefinition::new("tenant_cas");
/// Device certificates issued: (node id, device name) → `DeviceRecord`.
pub const DEVICES: TableDefinition<(&[u8], &str), &str> = TableDefinition::new("devices");
/// Invite codes: code → `InviteRecord`.
pub const INVITES: TableDefinition<&str, &str> = TableDefinition::new("invites");
/// Invite codes a tenant was given to share: node id → codes.
pub const INVITES_BY_OWNER: MultimapTableDefinition<&[u8], &str> =
    MultimapTableDefinition::new("invites_by_owner");
/// Signer rejection reports: sequence number → `RejectionRecord`.
pub const REJECTIONS: TableDefinition<u64, &str> = TableDefinition::new("rejections");
/// Tenants' exports: 33-byte node id → `ExportRecord` (holds the download token). A
/// tenant with a record here is never started again.
pub const EXPORTS: TableDefinition<&[u8], &str> = TableDefinition::new("exports");
/// Each tenant's Lightning port, from the operator's range: 33-byte node id → port.
pub const P2P_PORTS: TableDefinition<&[u8], u16> = TableDefinition::new("p2p_ports");
/// Webhook counters in [`META`]: the last webhook id and the last delivery number given.
pub const LAST_WEBHOOK_ID_KEY: &str = "last_webhook_id";
/// Key of the last delivery number in [`META`].
pub const LAST_DELIVERY_KEY: &str = "last_delivery";
/// Tenants' outgoing webhooks: webhook id → `WebhookRecord` (holds the secret).
pub const WEBHOOKS: TableDefinition<u64, &str> = TableDefinition::new("webhooks");
/// A tenant's webhooks: node id → webhook ids.
pub const WEBHOOKS_BY_TENANT: MultimapTableDefinition<&[u8], u64> =
    MultimapTableDefinition::new("webhooks_by_tenant");
/// Events taken from node-hosts, so one taken twice is delivered once:
/// (node id, event id) → `EventRecord`.
pub const EVENTS: TableDefinition<(&[u8], &str), &str> = TableDefinition::new("events");
/// Deliveries still to make, in the order each webhook's worker takes them:
/// (webhook id, due unix ms, delivery number) → `DeliveryRecord`.
pub const DELIVERY_QUEUE: TableDefinition<(u64, u64, u64), &str> =
    TableDefinition::new("delivery_queue");
/// Deliveries given up: delivery number → `FailedDeliveryRecord`.
pub const FAILED_DELIVERIES: TableDefinition<u64, &str> = TableDefinition::new("failed_deliveries");
