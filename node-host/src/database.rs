//! What the scheduler does with a node's state in PostgreSQL besides running it: copy it
//! out into the node directory's own store, for an export.
//!
//! The copy takes the tenant's lease first, as a node-host would: from then on no
//! node-host of the tenant (a stopped one's successor, or a stale one the cluster lost
//! track of) can write a single row, so what is copied is the node's last state. The
//! scheduler never starts the node again once its export is recorded, so the lease is
//! given back at the end.

use std::time::Duration;

use anyhow::Context;
use lightning_signer::bitcoin::secp256k1::PublicKey;

use crate::paths::NodeDir;
use crate::store::kv::choose::copy_all;
use crate::store::kv::postgres::{LeaseSettings, PgKv};
use crate::store::kv::redb::RedbKv;

/// Copies all of `node_id`'s state from the database at `url` into `dir`'s store
/// (`ldk.redb`, made anew: a copy an interrupted export left is replaced), waiting up to
/// `lease_ttl` for a node-host's lease to run out. Returns how many entries it copied.
pub fn copy_out(
    dir: &NodeDir,
    url: &str,
    node_id: PublicKey,
    lease_ttl: Duration,
) -> anyhow::Result<usize> {
    let db = PgKv::open(url, node_id.serialize(), LeaseSettings { ttl: lease_ttl })
        .context("the node's state in PostgreSQL cannot be opened")?;
    std::fs::create_dir_all(dir.root())
        .with_context(|| format!("cannot make {}", dir.root().display()))?;
    match std::fs::remove_file(dir.ldk_store()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).context(format!("cannot remove {}", dir.ldk_store().display())),
    }
    let here = RedbKv::open_node(dir).context("the export's store cannot be made")?;
    copy_all(&db, "PostgreSQL", &here, "the export's store")?;
    let copied = crate::store::kv::NodeKv::list_all(&here)?.len();
    // A node whose state was moved there from this directory has some: none is the wrong
    // database. (A node that never ran has none anywhere, and a Pod's marker is the Pod's.)
    anyhow::ensure!(
        copied > 0 || !dir.state_in_database().exists(),
        "the database holds none of this node's state: is the URL the one its state was moved to?"
    );
    drop(here);
    db.release().context("the lease cannot be given back")?;
    Ok(copied)
}

/// Whether the node's state is in `dir` itself, not yet taken into a database (it is at
/// the node's next start): a directory holding state and no mark of a move.
pub fn state_is_local(dir: &NodeDir) -> bool {
    !dir.state_in_database().exists()
        && (dir.ldk_store().exists()
            || dir.ldk().exists()
            || !crate::store::legacy::present(dir).is_empty())
}
