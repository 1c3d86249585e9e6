//! Tenants, their CAs and devices, invite codes and signer reports, in PostgreSQL.

use skylight_postgres::tokio_postgres::Transaction;

use super::{PgStore, Tx, big, small};
use crate::error::Error;
use crate::invite;
use crate::store::edits::{self, not_registered, unknown_invite, used_invite};
use crate::store::records::*;
use crate::store::{NewTenant, TenantListing, Tenants, from_json, to_json};

impl Tenants for PgStore {
    fn register_within(
        &self,
        tenant: NewTenant,
        invite: Option<&str>,
        share: u32,
        max_tenants: u64,
    ) -> Result<Vec<String>, Error> {
        let node_hex = tenant.record.node_id.clone();
        let id = &tenant.node_id[..];
        let (record, ca, device) = (
            to_json(&tenant.record)?,
            to_json(&tenant.ca)?,
            to_json(&tenant.device)?,
        );
        self.write(async |txn| {
            let known = "SELECT 1 FROM tenants WHERE node_id = $1";
            if txn.query_opt(known, &[&id]).await?.is_some() {
                return Err(edits::already_registered(&tenant).into());
            }
            // Counted in this transaction: registrations racing on other replicas cannot
            // pass the cap together (SERIALIZABLE makes all but one run again).
            if max_tenants != u64::MAX {
                let count: i64 = txn
                    .query_one("SELECT count(*) FROM tenants", &[])
                    .await?
                    .get(0);
                if small(count) >= max_tenants {
                    return Err(edits::too_many_tenants(max_tenants).into());
                }
            }
            if let Some(code) = invite {
                let found = txn
                    .query_opt("SELECT record FROM invites WHERE code = $1", &[&code])
                    .await?;
                let Some(found) = found else {
                    return Err(unknown_invite(code).into());
                };
                let mut rec: InviteRecord = from_json(found.get(0))?;
                edits::redeem(&mut rec, code, &node_hex)?;
                txn.execute(
                    "UPDATE invites SET record = $2 WHERE code = $1",
                    &[&code, &to_json(&rec)?],
                )
                .await?;
            }
            txn.execute(
                "INSERT INTO tenants (node_id, record) VALUES ($1, $2)",
                &[&id, &record],
            )
            .await?;
            txn.execute(
                "INSERT INTO tenant_cas (node_id, record) VALUES ($1, $2)",
                &[&id, &ca],
            )
            .await?;
            txn.execute(
                "INSERT INTO devices (node_id, name, record) VALUES ($1, $2, $3)",
                &[&id, &tenant.device_name, &device],
            )
            .await?;
            mint(txn, share, Some(&tenant.node_id)).await
        })
    }

    fn tenant(&self, node_id: &[u8; 33]) -> Result<Option<TenantRecord>, Error> {
        self.record("SELECT record FROM tenants WHERE node_id = $1", node_id)
    }

    fn has_tenants(&self) -> Result<bool, Error> {
        self.read(async |txn| {
            let row = txn.query_opt("SELECT 1 FROM tenants LIMIT 1", &[]).await?;
            Ok(row.is_some())
        })
    }

    fn tenant_count(&self) -> Result<u64, Error> {
        self.read(async |txn| {
            let n: i64 = txn
                .query_one("SELECT count(*) FROM tenants", &[])
                .await?
                .get(0);
            Ok(small(n))
        })
    }

    fn tenants(&self) -> Result<Vec<TenantListing>, Error> {
        self.read(async |txn| {
            let rows = txn
                .query(
                    "SELECT t.record,
                            (SELECT count(*) FROM devices d WHERE d.node_id = t.node_id),
                            e.record
                     FROM tenants t LEFT JOIN exports e ON e.node_id = t.node_id
                     ORDER BY t.node_id",
                    &[],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let devices: i64 = row.get(1);
                let export = match row.get::<_, Option<&str>>(2) {
                    Some(json) => Some(from_json::<ExportRecord>(json)?.state),
                    None => None,
                };
                out.push(TenantListing {
                    record: from_json(row.get(0))?,
                    devices: devices as u32,
                    export,
                });
            }
            Ok(out)
        })
    }

    fn tenant_ca(&self, node_id: &[u8; 33]) -> Result<Option<TenantCaRecord>, Error> {
        self.record("SELECT record FROM tenant_cas WHERE node_id = $1", node_id)
    }

    fn add_device(
        &self,
        node_id: &[u8; 33],
        device: &str,
        record: &DeviceRecord,
    ) -> Result<(), Error> {
        let (id, record) = (&node_id[..], to_json(record)?);
        self.write(async |txn| {
            require_registered(txn, node_id).await?;
            txn.execute(
                "INSERT INTO devices (node_id, name, record) VALUES ($1, $2, $3)
                 ON CONFLICT (node_id, name) DO UPDATE SET record = excluded.record",
                &[&id, &device, &record],
            )
            .await?;
            Ok(())
        })
    }

    fn devices(&self, node_id: &[u8; 33]) -> Result<Vec<(String, DeviceRecord)>, Error> {
        let id = &node_id[..];
        self.read(async |txn| {
            let rows = txn
                .query(
                    "SELECT name, record FROM devices WHERE node_id = $1 ORDER BY name",
                    &[&id],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push((row.get(0), from_json(row.get(1))?));
            }
            Ok(out)
        })
    }

    fn revoke_device(
        &self,
        node_id: &[u8; 33],
        name: &str,
        now: u64,
    ) -> Result<DeviceRecord, Error> {
        let id = &node_id[..];
        self.write(async |txn| {
            let found = txn
                .query_opt(
                    "SELECT record FROM devices WHERE node_id = $1 AND name = $2",
                    &[&id, &name],
                )
                .await?;
            let Some(found) = found else {
                return Err(edits::no_such_device(node_id, name).into());
            };
            let mut record: DeviceRecord = from_json(found.get(0))?;
            if edits::revoke(&mut record, now) {
                txn.execute(
                    "UPDATE devices SET record = $3 WHERE node_id = $1 AND name = $2",
                    &[&id, &name, &to_json(&record)?],
                )
                .await?;
            }
            Ok(record)
        })
    }

    fn revoked_devices(&self) -> Result<Vec<([u8; 33], String)>, Error> {
        self.read(async |txn| {
            let rows = txn
                .query(
                    "SELECT node_id, name, record FROM devices
                     WHERE (record::jsonb ->> 'revoked_at') IS NOT NULL
                     ORDER BY node_id, name",
                    &[],
                )
                .await?;
            let mut out = Vec::new();
            for row in rows {
                if from_json::<DeviceRecord>(row.get(2))?.revoked_at.is_some()
                    && let Ok(node) = <[u8; 33]>::try_from(row.get::<_, &[u8]>(0))
                {
                    out.push((node, row.get(1)));
                }
            }
            Ok(out)
        })
    }

    fn upgrade_signer(
        &self,
        node_id: &[u8; 33],
        version: &str,
        startup_msgs: Option<Vec<(String, String)>>,
    ) -> Result<String, Error> {
        let id = &node_id[..];
        self.write(async |txn| {
            let found = txn
                .query_opt("SELECT record FROM tenants WHERE node_id = $1", &[&id])
                .await?;
            let Some(found) = found else {
                return Err(not_registered(node_id).into());
            };
            let mut record: TenantRecord = from_json(found.get(0))?;
            // Cloned: an attempt PostgreSQL aborts runs again with the same input.
            let old = edits::upgrade(&mut record, version, startup_msgs.clone());
            txn.execute(
                "UPDATE tenants SET record = $2 WHERE node_id = $1",
                &[&id, &to_json(&record)?],
            )
            .await?;
            Ok(old)
        })
    }

    fn create_invites(&self, count: u32) -> Result<Vec<String>, Error> {
        self.write(async |txn| mint(txn, count, None).await)
    }

    fn invite_usable(&self, code: &str) -> Result<(), Error> {
        self.read(async |txn| {
            let found = txn
                .query_opt("SELECT record FROM invites WHERE code = $1", &[&code])
                .await?;
            let Some(found) = found else {
                return Err(unknown_invite(code).into());
            };
            if from_json::<InviteRecord>(found.get(0))?
                .redeemed_by
                .is_some()
            {
                return Err(used_invite(code).into());
            }
            Ok(())
        })
    }

    fn invites(&self) -> Result<Vec<(String, InviteRecord)>, Error> {
        self.read(async |txn| {
            let rows = txn
                .query("SELECT code, record FROM invites ORDER BY code", &[])
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push((row.get(0), from_json(row.get(1))?));
            }
            Ok(out)
        })
    }

    fn invites_owned_by(&self, node_id: &[u8; 33]) -> Result<Vec<(String, bool)>, Error> {
        let id = &node_id[..];
        self.read(async |txn| {
            let rows = txn
                .query(
                    "SELECT code, record FROM invites WHERE owner = $1 ORDER BY code",
                    &[&id],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let record: InviteRecord = from_json(row.get(1))?;
                out.push((row.get(0), record.redeemed_by.is_some()));
            }
            Ok(out)
        })
    }

    fn add_rejection(&self, record: &RejectionRecord, keep: u64) -> Result<u64, Error> {
        let record = to_json(record)?;
        self.write(async |txn| {
            let last: i64 = txn
                .query_one("SELECT coalesce(max(seq), 0) FROM signer_rejections", &[])
                .await?
                .get(0);
            let id = small(last) + 1;
            txn.execute(
                "INSERT INTO signer_rejections (seq, record) VALUES ($1, $2)",
                &[&big(id), &record],
            )
            .await?;
            if id > keep {
                // Reports arrive from unauthenticated callers: bound what they can store.
                txn.execute(
                    "DELETE FROM signer_rejections WHERE seq <= $1",
                    &[&big(id - keep)],
                )
                .await?;
            }
            Ok(id)
        })
    }

    fn rejections(&self) -> Result<Vec<RejectionRecord>, Error> {
        self.read(async |txn| {
            let rows = txn
                .query("SELECT record FROM signer_rejections ORDER BY seq", &[])
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(from_json(row.get(0))?);
            }
            Ok(out)
        })
    }
}

impl PgStore {
    /// The JSON record `sql` selects for a tenant, if any.
    pub(super) fn record<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        node_id: &[u8; 33],
    ) -> Result<Option<T>, Error> {
        let id = &node_id[..];
        self.read(async |txn| {
            let row = txn.query_opt(sql, &[&id]).await?;
            Ok(row.map(|r| from_json(r.get(0))).transpose()?)
        })
    }
}

/// NOT_FOUND unless the tenant is registered, checked inside the write that needs it.
pub(super) async fn require_registered(txn: &Transaction<'_>, node_id: &[u8; 33]) -> Tx<()> {
    let id = &node_id[..];
    match txn
        .query_opt("SELECT 1 FROM tenants WHERE node_id = $1", &[&id])
        .await?
    {
        Some(_) => Ok(()),
        None => Err(not_registered(node_id).into()),
    }
}

/// Inserts `count` new random codes, never reusing one that exists.
async fn mint(txn: &Transaction<'_>, count: u32, owner: Option<&[u8; 33]>) -> Tx<Vec<String>> {
    let owner_id = owner.map(|o| &o[..]);
    let mut codes = Vec::with_capacity(count as usize);
    while codes.len() < count as usize {
        let code = invite::new_code();
        let owner_hex = owner.map(hex::encode);
        let record = to_json(&edits::new_invite(owner_hex.as_deref()))?;
        let added = txn
            .execute(
                "INSERT INTO invites (code, owner, record) VALUES ($1, $2, $3)
                 ON CONFLICT (code) DO NOTHING",
                &[&code, &owner_id, &record],
            )
            .await?;
        if added == 1 {
            codes.push(code);
        }
    }
    Ok(codes)
}
