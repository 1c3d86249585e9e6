//! Durable state: tenants, their CAs, devices, invite codes, signer reports, exports,
//! ports and webhooks, behind the traits of [`api`]. [`Store`] is the handle the rest of
//! the scheduler holds, on whichever backend the operator chose: the embedded redb file
//! ([`RedbStore`], the single-machine default) here, PostgreSQL for replicas.
//!
//! Every method is one transaction, so what belongs together (a tenant, its CA, its
//! redeemed invite code, the codes it is given) commits together or not at all. The
//! methods block: call them from `spawn_blocking`.

pub mod api;
mod edits;
pub mod exports;
pub mod pg;
mod ports;
pub mod records;
pub mod schema;
#[cfg(test)]
mod testing;
pub mod webhooks;

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::invite;
pub use api::{Backend, Deployment, Exports, Ports, Tenants, Webhooks};
use edits::{not_registered, unknown_invite, used_invite};
use records::*;
use schema::*;

/// The scheduler's state, in whichever backend the operator chose; every method of
/// [`api::Backend`] is callable on it.
#[derive(Clone)]
pub struct Store(Arc<dyn Backend>);

impl std::ops::Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl Store {
    /// Opens (creating if needed) the embedded database at `path` for `network`; see
    /// [`RedbStore::open`].
    pub fn open(path: &Path, network: Option<&str>) -> Result<Store, OpenError> {
        Ok(Store(Arc::new(RedbStore::open(path, network)?)))
    }

    /// Connects to the PostgreSQL database `config` names for `network`; see
    /// [`pg::PgStore::open`]. Every replica of a deployment opens the same one.
    pub fn open_postgres(
        config: skylight_postgres::DbConfig,
        network: Option<&str>,
    ) -> Result<Store, OpenError> {
        Ok(Store(Arc::new(pg::PgStore::open(config, network)?)))
    }

    /// A store on `backend`.
    pub fn new(backend: impl Backend + 'static) -> Store {
        Store(Arc::new(backend))
    }
}

/// The embedded database: one redb file, the single-machine default. redb serialises write
/// transactions, which is what makes an invite code redeem exactly once.
pub struct RedbStore {
    db: Arc<Database>,
}

/// A tenant about to be registered, with everything stored with it.
pub struct NewTenant {
    /// 33-byte node id.
    pub node_id: [u8; 33],
    /// The tenant record.
    pub record: TenantRecord,
    /// Its CA.
    pub ca: TenantCaRecord,
    /// Its first device.
    pub device_name: String,
    /// The first device's certificate.
    pub device: DeviceRecord,
}

/// A tenant as the operator's list shows it.
pub struct TenantListing {
    /// The tenant.
    pub record: TenantRecord,
    /// Device certificates issued.
    pub devices: u32,
    /// Where its export stands, if it has one.
    pub export: Option<ExportState>,
}

/// NOT_FOUND unless the tenant is registered, checked inside the write that needs it.
fn require_registered(txn: &redb::WriteTransaction, node_id: &[u8; 33]) -> Result<(), Error> {
    let tenants = txn.open_table(TENANTS).map_err(storage)?;
    match tenants.get(&node_id[..]).map_err(storage)? {
        Some(_) => Ok(()),
        None => Err(not_registered(node_id)),
    }
}

fn storage(err: impl std::fmt::Display) -> Error {
    Error::Internal(format!("storage: {err}"))
}

fn to_json(v: &impl Serialize) -> Result<String, Error> {
    serde_json::to_string(v).map_err(storage)
}

fn from_json<T: DeserializeOwned>(s: &str) -> Result<T, Error> {
    serde_json::from_str(s).map_err(storage)
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl RedbStore {
    /// Opens (creating if needed) the database at `path` for `network`. A database made for
    /// one network refuses to open for another: tenants and their keys belong to one chain.
    /// Without a network (operator commands) the stored one is neither checked nor set.
    pub fn open(path: &Path, network: Option<&str>) -> Result<RedbStore, OpenError> {
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => OpenError::Locked,
            other => OpenError::Other(other.to_string()),
        })?;
        let store = RedbStore { db: Arc::new(db) };
        store.init(network).map_err(|e| match e {
            Error::FailedPrecondition(m) => OpenError::WrongNetwork(m),
            other => OpenError::Other(other.to_string()),
        })?;
        Ok(store)
    }

    fn init(&self, network: Option<&str>) -> Result<(), Error> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut meta = txn.open_table(META).map_err(storage)?;
            let version = meta
                .get(SCHEMA_VERSION_KEY)
                .map_err(storage)?
                .map(|v| v.value().to_string());
            match version {
                None => {
                    meta.insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION.to_string().as_str())
                        .map_err(storage)?;
                }
                Some(v) if v == SCHEMA_VERSION.to_string() => {}
                Some(v) => {
                    return Err(storage(format!(
                        "database schema version {v} is not {SCHEMA_VERSION}, which this scheduler reads"
                    )));
                }
            }
            let stored = meta
                .get(NETWORK_KEY)
                .map_err(storage)?
                .map(|v| v.value().to_string());
            match (stored, network) {
                (_, None) => {}
                (None, Some(network)) => {
                    meta.insert(NETWORK_KEY, network).map_err(storage)?;
                }
                (Some(n), Some(network)) if n == network => {}
                (Some(n), Some(network)) => {
                    return Err(Error::FailedPrecondition(format!(
                        "this data directory serves {n}, not {network}; use another data directory"
                    )));
                }
            }
            // Create every table so read transactions never meet a missing one.
            txn.open_table(TENANTS).map_err(storage)?;
            txn.open_table(TENANT_CAS).map_err(storage)?;
            txn.open_table(DEVICES).map_err(storage)?;
            txn.open_table(INVITES).map_err(storage)?;
            txn.open_multimap_table(INVITES_BY_OWNER).map_err(storage)?;
            txn.open_table(REJECTIONS).map_err(storage)?;
            txn.open_table(P2P_PORTS).map_err(storage)?;
            txn.open_table(EXPORTS).map_err(storage)?;
            txn.open_table(WEBHOOKS).map_err(storage)?;
            txn.open_multimap_table(WEBHOOKS_BY_TENANT)
                .map_err(storage)?;
            txn.open_table(EVENTS).map_err(storage)?;
            txn.open_table(DELIVERY_QUEUE).map_err(storage)?;
            txn.open_table(FAILED_DELIVERIES).map_err(storage)?;
        }
        txn.commit().map_err(storage)
    }
}

impl Tenants for RedbStore {
    fn register_within(
        &self,
        tenant: NewTenant,
        invite: Option<&str>,
        share: u32,
        max_tenants: u64,
    ) -> Result<Vec<String>, Error> {
        let node_hex = tenant.record.node_id.clone();
        let txn = self.db.begin_write().map_err(storage)?;
        let minted;
        {
            let mut tenants = txn.open_table(TENANTS).map_err(storage)?;
            if tenants.get(&tenant.node_id[..]).map_err(storage)?.is_some() {
                return Err(edits::already_registered(&tenant));
            }
            if redb::ReadableTableMetadata::len(&tenants).map_err(storage)? >= max_tenants {
                return Err(edits::too_many_tenants(max_tenants));
            }
            let mut invites = txn.open_table(INVITES).map_err(storage)?;
            if let Some(code) = invite {
                let existing = invites
                    .get(code)
                    .map_err(storage)?
                    .map(|v| v.value().to_string());
                let Some(existing) = existing else {
                    return Err(unknown_invite(code));
                };
                let mut rec: InviteRecord = from_json(&existing)?;
                edits::redeem(&mut rec, code, &node_hex)?;
                invites
                    .insert(code, to_json(&rec)?.as_str())
                    .map_err(storage)?;
            }
            tenants
                .insert(&tenant.node_id[..], to_json(&tenant.record)?.as_str())
                .map_err(storage)?;
            txn.open_table(TENANT_CAS)
                .map_err(storage)?
                .insert(&tenant.node_id[..], to_json(&tenant.ca)?.as_str())
                .map_err(storage)?;
            txn.open_table(DEVICES)
                .map_err(storage)?
                .insert(
                    (&tenant.node_id[..], tenant.device_name.as_str()),
                    to_json(&tenant.device)?.as_str(),
                )
                .map_err(storage)?;
            let mut by_owner = txn.open_multimap_table(INVITES_BY_OWNER).map_err(storage)?;
            minted = mint(&mut invites, share, Some(&node_hex))?;
            for code in &minted {
                by_owner
                    .insert(&tenant.node_id[..], code.as_str())
                    .map_err(storage)?;
            }
        }
        txn.commit().map_err(storage)?;
        Ok(minted)
    }

    fn tenant(&self, node_id: &[u8; 33]) -> Result<Option<TenantRecord>, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(TENANTS).map_err(storage)?;
        let value = table.get(&node_id[..]).map_err(storage)?;
        value.map(|v| from_json(v.value())).transpose()
    }

    fn has_tenants(&self) -> Result<bool, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(TENANTS).map_err(storage)?;
        Ok(table.first().map_err(storage)?.is_some())
    }

    fn tenant_count(&self) -> Result<u64, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(TENANTS).map_err(storage)?;
        redb::ReadableTableMetadata::len(&table).map_err(storage)
    }

    fn tenants(&self) -> Result<Vec<TenantListing>, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(TENANTS).map_err(storage)?;
        let devices = txn.open_table(DEVICES).map_err(storage)?;
        let exports = txn.open_table(EXPORTS).map_err(storage)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (k, v) = entry.map_err(storage)?;
            let record: TenantRecord = from_json(v.value())?;
            let node = k.value();
            let count = devices
                .range((node, "")..)
                .map_err(storage)?
                .take_while(|e| e.as_ref().is_ok_and(|(k, _)| k.value().0 == node))
                .count();
            let export = match exports.get(node).map_err(storage)? {
                Some(v) => Some(from_json::<ExportRecord>(v.value())?.state),
                None => None,
            };
            out.push(TenantListing {
                record,
                devices: count as u32,
                export,
            });
        }
        Ok(out)
    }

    fn tenant_ca(&self, node_id: &[u8; 33]) -> Result<Option<TenantCaRecord>, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(TENANT_CAS).map_err(storage)?;
        let value = table.get(&node_id[..]).map_err(storage)?;
        value.map(|v| from_json(v.value())).transpose()
    }

    fn add_device(
        &self,
        node_id: &[u8; 33],
        device: &str,
        record: &DeviceRecord,
    ) -> Result<(), Error> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            require_registered(&txn, node_id)?;
            txn.open_table(DEVICES)
                .map_err(storage)?
                .insert((&node_id[..], device), to_json(record)?.as_str())
                .map_err(storage)?;
        }
        txn.commit().map_err(storage)
    }

    fn devices(&self, node_id: &[u8; 33]) -> Result<Vec<(String, DeviceRecord)>, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(DEVICES).map_err(storage)?;
        let mut out = Vec::new();
        for entry in table.range((&node_id[..], "")..).map_err(storage)? {
            let (k, v) = entry.map_err(storage)?;
            let (node, device) = k.value();
            if node != &node_id[..] {
                break;
            }
            out.push((device.to_string(), from_json(v.value())?));
        }
        Ok(out)
    }

    fn revoke_device(
        &self,
        node_id: &[u8; 33],
        name: &str,
        now: u64,
    ) -> Result<DeviceRecord, Error> {
        let txn = self.db.begin_write().map_err(storage)?;
        let record = {
            let mut table = txn.open_table(DEVICES).map_err(storage)?;
            let found = table
                .get((&node_id[..], name))
                .map_err(storage)?
                .map(|v| from_json::<DeviceRecord>(v.value()))
                .transpose()?;
            let Some(mut record) = found else {
                return Err(edits::no_such_device(node_id, name));
            };
            if edits::revoke(&mut record, now) {
                table
                    .insert((&node_id[..], name), to_json(&record)?.as_str())
                    .map_err(storage)?;
            }
            record
        };
        txn.commit().map_err(storage)?;
        Ok(record)
    }

    fn revoked_devices(&self) -> Result<Vec<([u8; 33], String)>, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(DEVICES).map_err(storage)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (k, v) = entry.map_err(storage)?;
            let (node, device) = k.value();
            if from_json::<DeviceRecord>(v.value())?.revoked_at.is_some()
                && let Ok(node) = <[u8; 33]>::try_from(node)
            {
                out.push((node, device.to_string()));
            }
        }
        Ok(out)
    }

    fn upgrade_signer(
        &self,
        node_id: &[u8; 33],
        version: &str,
        startup_msgs: Option<Vec<(String, String)>>,
    ) -> Result<String, Error> {
        let txn = self.db.begin_write().map_err(storage)?;
        let old;
        {
            let mut tenants = txn.open_table(TENANTS).map_err(storage)?;
            let current = tenants
                .get(&node_id[..])
                .map_err(storage)?
                .map(|v| v.value().to_string());
            let Some(current) = current else {
                return Err(not_registered(node_id));
            };
            let mut record: TenantRecord = from_json(&current)?;
            old = edits::upgrade(&mut record, version, startup_msgs);
            tenants
                .insert(&node_id[..], to_json(&record)?.as_str())
                .map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        Ok(old)
    }

    fn create_invites(&self, count: u32) -> Result<Vec<String>, Error> {
        let txn = self.db.begin_write().map_err(storage)?;
        let codes;
        {
            let mut invites = txn.open_table(INVITES).map_err(storage)?;
            codes = mint(&mut invites, count, None)?;
        }
        txn.commit().map_err(storage)?;
        Ok(codes)
    }

    fn invite_usable(&self, code: &str) -> Result<(), Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(INVITES).map_err(storage)?;
        let value = table.get(code).map_err(storage)?;
        let Some(value) = value else {
            return Err(unknown_invite(code));
        };
        if from_json::<InviteRecord>(value.value())?
            .redeemed_by
            .is_some()
        {
            return Err(used_invite(code));
        }
        Ok(())
    }

    fn invites(&self) -> Result<Vec<(String, InviteRecord)>, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(INVITES).map_err(storage)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (k, v) = entry.map_err(storage)?;
            out.push((k.value().to_string(), from_json(v.value())?));
        }
        Ok(out)
    }

    fn invites_owned_by(&self, node_id: &[u8; 33]) -> Result<Vec<(String, bool)>, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let by_owner = txn.open_multimap_table(INVITES_BY_OWNER).map_err(storage)?;
        let invites = txn.open_table(INVITES).map_err(storage)?;
        let mut out = Vec::new();
        for code in by_owner.get(&node_id[..]).map_err(storage)? {
            let code = code.map_err(storage)?.value().to_string();
            let redeemed = match invites.get(code.as_str()).map_err(storage)? {
                Some(v) => from_json::<InviteRecord>(v.value())?.redeemed_by.is_some(),
                None => false,
            };
            out.push((code, redeemed));
        }
        Ok(out)
    }

    fn add_rejection(&self, record: &RejectionRecord, keep: u64) -> Result<u64, Error> {
        let txn = self.db.begin_write().map_err(storage)?;
        let id;
        {
            let mut table = txn.open_table(REJECTIONS).map_err(storage)?;
            id = table
                .last()
                .map_err(storage)?
                .map(|(k, _)| k.value() + 1)
                .unwrap_or(1);
            table
                .insert(id, to_json(record)?.as_str())
                .map_err(storage)?;
            if id > keep {
                // Reports arrive from unauthenticated callers: bound what they can store.
                table
                    .retain_in(..=id - keep, |_, _| false)
                    .map_err(storage)?;
            }
        }
        txn.commit().map_err(storage)?;
        Ok(id)
    }

    fn rejections(&self) -> Result<Vec<RejectionRecord>, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(REJECTIONS).map_err(storage)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage)? {
            out.push(from_json(entry.map_err(storage)?.1.value())?);
        }
        Ok(out)
    }
}

impl Deployment for RedbStore {
    fn share_once(&self, key: &str, value: &str) -> Result<String, Error> {
        let txn = self.db.begin_write().map_err(storage)?;
        let stored = {
            let mut meta = txn.open_table(META).map_err(storage)?;
            let found = meta
                .get(key)
                .map_err(storage)?
                .map(|v| v.value().to_string());
            match found {
                Some(found) => found,
                None => {
                    meta.insert(key, value).map_err(storage)?;
                    value.to_string()
                }
            }
        };
        txn.commit().map_err(storage)?;
        Ok(stored)
    }
}

/// Inserts `count` new random codes, never reusing one that exists.
fn mint(
    invites: &mut redb::Table<&str, &str>,
    count: u32,
    owner: Option<&str>,
) -> Result<Vec<String>, Error> {
    let mut codes = Vec::with_capacity(count as usize);
    while codes.len() < count as usize {
        let code = invite::new_code();
        if invites.get(code.as_str()).map_err(storage)?.is_some() {
            continue;
        }
        invites
            .insert(code.as_str(), to_json(&edits::new_invite(owner))?.as_str())
            .map_err(storage)?;
        codes.push(code);
    }
    Ok(codes)
}

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another process (a running scheduler) holds it.
    #[error("the database is in use by another process")]
    Locked,
    /// It was made for another network.
    #[error("{0}")]
    WrongNetwork(String),
    /// Anything else.
    #[error("cannot open the database: {0}")]
    Other(String),
}

#[cfg(test)]
mod tests;
