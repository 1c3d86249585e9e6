//! Which backend keeps a node's state, as its configuration says — and what moving a node
//! from its directory to PostgreSQL takes, so that no state is ever left in two places or
//! started afresh beside an older copy.
//!
//! - With a database: a node directory still holding state (`ldk.redb`, LDK's older `ldk/`
//!   files, or node-host's older files) has it taken into the database in one transaction, read back against
//!   the local copy, and the local copy removed. State both here and in the database is
//!   refused unless they are the same (a take-in that stopped after its commit).
//! - Either way the node directory then records that its state is in the database
//!   (`state-in-database`), and a node-host started on it without the database refuses,
//!   rather than making a new, empty node on top of its channels.

use std::sync::Arc;

use anyhow::{Context, bail};

use super::NodeKv;
use super::postgres::{LeaseSettings, PgKv};
use super::redb::RedbKv;
use crate::config::Config;

/// A node's state backend, opened.
pub struct Opened {
    /// Where LDK's store reads and writes.
    pub kv: Arc<dyn NodeKv>,
    /// The database, when the state is there (its lease held).
    pub database: Option<Arc<PgKv>>,
}

/// Opens the state of the node `config` runs, taking the lease first where there is one.
pub fn open(config: &Config) -> anyhow::Result<Opened> {
    let dir = config.dir();
    let marker = dir.state_in_database();
    let Some(url_file) = &config.state_database_url_file else {
        if marker.exists() {
            bail!(
                "this node's state is kept in PostgreSQL ({}); start node-host with \
                 --state-database-url-file, as before",
                std::fs::read_to_string(&marker).unwrap_or_default().trim()
            );
        }
        let kv = RedbKv::open_node(&dir).context("the node's store cannot be opened")?;
        crate::store::legacy::take_in(&dir, &kv)?;
        return Ok(Opened {
            kv: Arc::new(kv),
            database: None,
        });
    };
    let url = std::fs::read_to_string(url_file)
        .with_context(|| format!("cannot read {}", url_file.display()))?;
    let where_ = skylight_postgres::describe(&skylight_postgres::parse(&url)?.pg);
    let lease = LeaseSettings {
        ttl: config.lease_ttl,
    };
    let db = Arc::new(
        PgKv::open(&url, config.node_id.serialize(), lease)
            .context("the node's state in PostgreSQL cannot be opened")?,
    );
    let local = dir.ldk_store().exists()
        || dir.ldk().exists()
        || !crate::store::legacy::present(&dir).is_empty();
    // A node whose state went into a database before and that finds it empty now is
    // pointed at the wrong database (or a restored, older one): starting it afresh would
    // make a new node over its channels.
    if marker.exists() && !local && db.list_all()?.is_empty() {
        bail!(
            "this node's state was moved into PostgreSQL ({}), but {where_} holds none of it: \
             is the database URL the one it was moved to? (Only if this node never held any \
             state, remove {} to start it afresh.)",
            std::fs::read_to_string(&marker).unwrap_or_default().trim(),
            marker.display()
        );
    }
    // Recorded before anything is taken in: from here on a start without the database is
    // refused, whatever happens next.
    if !marker.exists() {
        skylight_client::files::replace_private(&marker, format!("{where_}\n").as_bytes())
            .with_context(|| format!("cannot write {}", marker.display()))?;
    }
    if local {
        // All of it into the directory's store first, then all of that into the database.
        let here = RedbKv::open_node(&dir)?;
        crate::store::legacy::take_in(&dir, &here)?;
        copy_all(&here, "its directory", db.as_ref(), "PostgreSQL")?;
        drop(here);
        std::fs::remove_file(dir.ldk_store())
            .with_context(|| format!("cannot remove {}", dir.ldk_store().display()))?;
        skylight_client::files::sync_dir_of(&dir.ldk_store())?;
        tracing::info!(to = %where_, "the node's state was taken from its directory into PostgreSQL");
    }
    Ok(Opened {
        kv: db.clone(),
        database: Some(db),
    })
}

/// Every entry of `from` (its state in `from_name`) into `to` (in `to_name`) in one
/// commit, then read back. If `to` holds state already it must be the very same (a copy
/// that stopped after its commit), else the copy is refused: one of the two is older.
pub(crate) fn copy_all(
    from: &dyn NodeKv,
    from_name: &str,
    to: &dyn NodeKv,
    to_name: &str,
) -> anyhow::Result<()> {
    let keys = from.list_all()?;
    let mut entries = Vec::with_capacity(keys.len());
    for (p, s, k) in keys {
        let value = from
            .read(&p, &s, &k)?
            .with_context(|| format!("{p}/{s}/{k} vanished while being read"))?;
        entries.push((p, s, k, value));
    }
    let theirs = to.list_all()?;
    if !theirs.is_empty() {
        let same = theirs.len() == entries.len()
            && entries
                .iter()
                .all(|(p, s, k, v)| to.read(p, s, k).ok().flatten().as_ref() == Some(v));
        if !same {
            bail!(
                "this node has state both in {from_name} and in {to_name}, and they differ: \
                 one of them is an older copy, and running on it could lose funds; the \
                 operator must remove the older one"
            );
        }
        return Ok(());
    }
    let changes = entries
        .iter()
        .map(|(p, s, k, v)| super::Change {
            primary: p.clone(),
            secondary: s.clone(),
            key: k.clone(),
            value: Some(v.clone()),
        })
        .collect();
    to.commit(changes, super::Durability::Immediate)?;
    for (p, s, k, v) in &entries {
        if to.read(p, s, k)?.as_ref() != Some(v) {
            bail!("{p}/{s}/{k} reads back from {to_name} other than it was written");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
