//! Each tenant's lease: the one node-host that may write the tenant's node state.
//!
//! A node-host takes the lease before it reads any state, and every write it makes is one
//! transaction that first renews the lease, on the condition that the lease is still its
//! own ([`FENCE`]): the row lock that UPDATE takes orders every takeover before or after
//! the whole write. So a node-host whose lease was taken over (it was stopped, partitioned,
//! or stalled past the lease's time) cannot write a single row: its next transaction
//! changes nothing and rolls back. Only the database's clock counts.
//!
//! The holder renews the lease well within its time ([`Lease::renew`]) and stops itself
//! when it has not managed to for too long, before anyone else can take it over.

use std::time::Duration;

use tokio_postgres::{Client, GenericClient};

use crate::Error;

/// The fence: renews the lease of (node id `$1`, epoch `$2`, owner `$3`) by `$4`
/// milliseconds, if it is still that owner's and has not run out. One row updated: the
/// lease holds, and its row is locked until the transaction ends.
pub const FENCE: &str = "UPDATE node_lease SET expires_at = now() + $4::bigint * interval '1 millisecond' \
     WHERE node_id = $1 AND epoch = $2 AND owner = $3 AND expires_at > now()";

const ACQUIRE: &str = "INSERT INTO node_lease (node_id, epoch, owner, expires_at) \
     VALUES ($1, 1, $2, now() + $3::bigint * interval '1 millisecond') \
     ON CONFLICT (node_id) DO UPDATE \
        SET epoch = node_lease.epoch + 1, owner = excluded.owner, expires_at = excluded.expires_at \
      WHERE node_lease.expires_at <= now() \
     RETURNING epoch";

const REMAINING: &str = "SELECT greatest(0, extract(epoch FROM expires_at - now()) * 1000)::bigint \
     FROM node_lease WHERE node_id = $1";

const RELEASE: &str = "UPDATE node_lease SET expires_at = now() \
     WHERE node_id = $1 AND epoch = $2 AND owner = $3";

/// A lease held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The tenant's node id (33 bytes).
    pub node_id: Vec<u8>,
    /// Raised at every takeover: the one holder's.
    pub epoch: i64,
    /// Random, this process's.
    pub owner: Vec<u8>,
    /// How long each renewal lasts.
    pub ttl: Duration,
}

/// Why the lease was not taken.
#[derive(Debug)]
pub enum Refused {
    /// Another holder has it for this much longer.
    Held(Duration),
    /// The database failed.
    Db(Error),
}

impl From<tokio_postgres::Error> for Refused {
    fn from(e: tokio_postgres::Error) -> Self {
        Refused::Db(e.into())
    }
}

fn millis(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

impl Lease {
    /// Takes the tenant's lease for `ttl` if nobody holds it (or its holder's ran out).
    pub async fn acquire(
        client: &Client,
        node_id: &[u8],
        owner: Vec<u8>,
        ttl: Duration,
    ) -> Result<Lease, Refused> {
        let ms = millis(ttl);
        if let Some(row) = client.query_opt(ACQUIRE, &[&node_id, &owner, &ms]).await? {
            return Ok(Lease {
                node_id: node_id.to_vec(),
                epoch: row.get(0),
                owner,
                ttl,
            });
        }
        let left: i64 = client
            .query_opt(REMAINING, &[&node_id])
            .await?
            .map_or(0, |r| r.get(0));
        Err(Refused::Held(Duration::from_millis(left.max(0) as u64)))
    }

    /// Renews the lease, inside `client`'s transaction if it is one; false if it is no
    /// longer this holder's (taken over, or run out).
    pub async fn renew(&self, client: &impl GenericClient) -> Result<bool, tokio_postgres::Error> {
        let ms = millis(self.ttl);
        let n = client
            .execute(FENCE, &[&self.node_id, &self.epoch, &self.owner, &ms])
            .await?;
        Ok(n == 1)
    }

    /// Gives the lease up (a clean stop), so the next node-host need not wait it out.
    pub async fn release(&self, client: &Client) -> Result<(), tokio_postgres::Error> {
        client
            .execute(RELEASE, &[&self.node_id, &self.epoch, &self.owner])
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
