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
/// Each tenant's Lightning port, from the operator's range: 33-byte node id → port.
pub const P2P_PORTS: TableDefinition<&[u8], u16> = TableDefinition::new("p2p_ports");
