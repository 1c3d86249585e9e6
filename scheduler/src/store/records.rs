//! What the scheduler stores about tenants, devices, invite codes and signer reports.

use serde::{Deserialize, Serialize};

/// A registered tenant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TenantRecord {
    /// Hex node id.
    pub node_id: String,
    /// The network the tenant registered for.
    pub network: String,
    /// The signer's protocol version (`signer_proto` on register, then `MaybeUpgrade`).
    pub signer_version: String,
    /// The signer's hsmd init reply, hex.
    #[serde(default)]
    pub init_msg: String,
    /// The signer's startup messages (request, response), hex.
    #[serde(default)]
    pub startup_msgs: Vec<(String, String)>,
    /// The invite code redeemed, if any.
    #[serde(default)]
    pub invite_code: Option<String>,
    /// Unix seconds.
    pub registered_at: u64,
    /// Unix seconds of the last `MaybeUpgrade`.
    #[serde(default)]
    pub upgraded_at: Option<u64>,
}

/// A tenant's CA certificate and key. The key is secret.
#[derive(Clone, Serialize, Deserialize)]
pub struct TenantCaRecord {
    /// PEM certificate.
    pub cert_pem: String,
    /// PEM PKCS#8 private key.
    pub key_pem: String,
}

/// A device certificate that was issued.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The certificate's subject.
    pub subject: String,
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds.
    pub not_after: i64,
    /// The device's public key (hex, 65-byte uncompressed P-256), as its rune names it;
    /// empty for a device recorded before keys were.
    #[serde(default)]
    pub public_key: String,
    /// When the device was revoked (unix seconds); `None` while it is not.
    #[serde(default)]
    pub revoked_at: Option<u64>,
}

/// An invite code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InviteRecord {
    /// Hex node id of the tenant the code was given to; `None` for operator codes.
    pub owner: Option<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Hex node id of the tenant that redeemed it.
    pub redeemed_by: Option<String>,
    /// Unix seconds.
    pub redeemed_at: Option<u64>,
}

/// A signer's report that it refused a request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RejectionRecord {
    /// Hex node id the report is about (from the body, else the caller's certificate).
    pub node_id: String,
    /// Who sent it: `nobody` or the device certificate's subject.
    pub reporter: String,
    /// Whether it came from a device of the tenant it names (else anyone may have sent
    /// it, and it is counted apart).
    #[serde(default)]
    pub from_tenant: bool,
    /// The signer's reason.
    pub msg: String,
    /// The signer's build.
    pub git_version: String,
    /// The refused hsmd message, hex (truncated to a bound).
    pub request_raw: String,
    /// Unix seconds.
    pub received_at: u64,
}

/// A tenant's outgoing webhook.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WebhookRecord {
    /// Hex node id of the tenant.
    pub node_id: String,
    /// Where events are posted.
    pub uri: String,
    /// The signing secret (`whsec_…`), shown to the tenant once. Secret.
    pub secret: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds of the last rotation.
    #[serde(default)]
    pub rotated_at: Option<u64>,
}

/// An event taken from a node-host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventRecord {
    /// `invoice_payment`, `signer_needed`, …
    pub event_type: String,
    /// Unix seconds when the scheduler stored it.
    pub stored_at: u64,
    /// How many webhooks it was queued for.
    pub deliveries: u32,
}

/// A delivery still to make: one event to one webhook.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// Hex node id of the tenant.
    pub node_id: String,
    /// The event's id (the `webhook-id` header; the same on every attempt).
    pub event_id: String,
    /// The event's type (the `X-Greenlight-Event` header).
    pub event_type: String,
    /// The request body, fixed when the event was stored so every attempt sends the same
    /// bytes.
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// What the last attempt got.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// A delivery given up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FailedDeliveryRecord {
    /// The webhook it was for.
    pub webhook_id: u64,
    /// Its URI then.
    pub uri: String,
    /// The delivery as it last stood.
    pub delivery: DeliveryRecord,
    /// Unix seconds.
    pub failed_at: u64,
}

/// Everything but the secret, so that no log can hold it.
impl std::fmt::Debug for WebhookRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRecord")
            .field("node_id", &self.node_id)
            .field("uri", &self.uri)
            .field("secret", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("rotated_at", &self.rotated_at)
            .finish()
    }
}

/// Where a tenant's export stands. A tenant with one never has its node started again.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ExportState {
    /// Marked for export; the file is not (yet) stored.
    Exporting,
    /// The file is stored and its URL given.
    Exported,
}

/// A tenant's export.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExportRecord {
    /// Where it stands.
    pub state: ExportState,
    /// The download's capability token, hex (secret: whoever holds it may download).
    pub token: String,
    /// Unix seconds the export was asked for.
    pub started_at: u64,
    /// Unix seconds the file was stored.
    #[serde(default)]
    pub finished_at: Option<u64>,
    /// The sealed file's size, bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// SHA-256 of the sealed file, hex.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Unix seconds the file was deleted, its keeping time over (the record stays: the
    /// node is still never started again).
    #[serde(default)]
    pub deleted_at: Option<u64>,
}
