//! The node directory of before: node-host's own state in five redb databases and three
//! small files beside `ldk.redb`. At start whatever of it is there is taken into the
//! node's store (`store::kv`) in one commit that also marks it taken in, read back, and
//! only then are the files removed. Files left behind by a start that stopped between its
//! commit and their removal are an older copy: removed unread.

use std::path::PathBuf;

use anyhow::{Context, bail};
use redb::{ReadableDatabase, ReadableTable, TableDefinition, TableError};

use super::kv::{Change, Durability, NodeKv, Space, number_key};
use super::schema::{self, *};
use crate::paths::NodeDir;

/// The files of before in `dir` that are there.
pub fn present(dir: &NodeDir) -> Vec<PathBuf> {
    [
        dir.signer_state(),
        dir.channel_signers(),
        dir.invoices(),
        dir.payments(),
        dir.outbox(),
        dir.next_dbid(),
        dir.receive_auth_key(),
        dir.p2p_addr(),
    ]
    .into_iter()
    .filter(|p| p.exists())
    .collect()
}

/// Takes the files of before in `dir` into `kv` and removes them.
pub fn take_in(dir: &NodeDir, kv: &dyn NodeKv) -> anyhow::Result<()> {
    let files = present(dir);
    if files.is_empty() {
        return Ok(());
    }
    let marker = (STORE_META.primary, STORE_META.secondary, LEGACY_TAKEN_IN);
    if kv.read(marker.0, marker.1, marker.2)?.is_none() {
        let mut changes = gather(dir)?;
        changes.push(put(STORE_META, LEGACY_TAKEN_IN, vec![1]));
        kv.commit(changes.clone(), Durability::Immediate)
            .context("cannot take the node's older files in")?;
        for c in &changes {
            if kv.read(&c.primary, &c.secondary, &c.key)? != c.value {
                bail!(
                    "{}/{}/{} reads back other than the file it was taken from",
                    c.primary,
                    c.secondary,
                    c.key
                );
            }
        }
        tracing::info!(files = files.len(), "the node's older files taken into its store");
    }
    for f in &files {
        std::fs::remove_file(f).with_context(|| format!("cannot remove {}", f.display()))?;
    }
    skylight_client::files::sync_dir_of(&files[0])?;
    Ok(())
}

fn put(space: Space, key: &str, value: Vec<u8>) -> Change {
    Change {
        primary: space.primary.into(),
        secondary: space.secondary.into(),
        key: key.into(),
        value: Some(value),
    }
}

/// Every row of `table` in the database at `path` (none if the file or table is absent).
fn rows<K, V>(
    path: &std::path::Path,
    table: TableDefinition<K, V>,
    mut each: impl FnMut(K::SelfType<'_>, V::SelfType<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
{
    if !path.exists() {
        return Ok(());
    }
    let db = schema::open(path)?;
    let txn = db.begin_read()?;
    let table = match txn.open_table(table) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for row in table.iter()? {
        let (k, v) = row?;
        each(k.value(), v.value())?;
    }
    Ok(())
}

fn counter_change(name: &str, value: u64) -> Change {
    put(COUNTERS, name, value.to_be_bytes().to_vec())
}

/// Everything the files of before hold, as changes to the node's store.
fn gather(dir: &NodeDir) -> anyhow::Result<Vec<Change>> {
    let mut out = Vec::new();
    rows(&dir.signer_state(), SIGNER_STATE, |k, v| {
        out.push(put(SIGNER_ENTRIES, k, v.to_vec()));
        Ok(())
    })?;
    rows(&dir.signer_state(), STATE_KEY, |k, v| {
        if k == STATE_KEY_ROW {
            out.push(put(SIGNER_KEY, PINNED_KEY, v.to_vec()));
        }
        Ok(())
    })?;
    rows(&dir.channel_signers(), CHANNEL_SIGNERS, |k, v| {
        out.push(put(CHANNEL_RECORDS, &number_key(k), v.to_vec()));
        Ok(())
    })?;
    rows(&dir.invoices(), INVOICES_BY_LABEL, |k, v| {
        out.push(put(INVOICES, k, v.to_vec()));
        Ok(())
    })?;
    rows(&dir.invoices(), INVOICE_LABELS_BY_HASH, |k, v| {
        out.push(put(INVOICE_LABELS, &hex::encode(k), v.as_bytes().to_vec()));
        Ok(())
    })?;
    rows(&dir.invoices(), INVOICE_COUNTERS, |k, v| {
        match k {
            "created" => out.push(counter_change(INVOICES_CREATED, v)),
            "paid" => out.push(counter_change(INVOICES_PAID, v)),
            _ => {}
        }
        Ok(())
    })?;
    rows(&dir.payments(), PAYMENTS_TABLE, |k, v| {
        out.push(put(PAYMENTS, &hex::encode(k), v.to_vec()));
        Ok(())
    })?;
    rows(&dir.payments(), PAYMENT_COUNTERS, |k, v| {
        if k == "created" {
            out.push(counter_change(PAYMENTS_CREATED, v));
        }
        Ok(())
    })?;
    rows(&dir.outbox(), OUTBOX_TABLE, |k, v| {
        out.push(put(OUTBOX, &number_key(k), v.to_vec()));
        Ok(())
    })?;
    rows(&dir.outbox(), OUTBOX_RAISED_TABLE, |k, v| {
        out.push(put(OUTBOX_RAISED, k, v.as_bytes().to_vec()));
        Ok(())
    })?;
    rows(&dir.outbox(), OUTBOX_COUNTERS, |k, v| {
        if k == "seq" {
            out.push(counter_change(OUTBOX_SEQ, v));
        }
        Ok(())
    })?;
    // The file held the next channel id; the store keeps the last one given.
    if let Some(text) = read_text(&dir.next_dbid())? {
        let next: u64 = text
            .trim()
            .parse()
            .with_context(|| format!("{} is damaged", dir.next_dbid().display()))?;
        out.push(counter_change(CHANNELS_CREATED, next.saturating_sub(1)));
    }
    match std::fs::read(dir.receive_auth_key()) {
        Ok(key) if key.len() == 32 => out.push(put(NODE, RECEIVE_AUTH_KEY, key)),
        Ok(_) => bail!("{} is damaged (not 32 bytes)", dir.receive_auth_key().display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).context(format!("cannot read {}", dir.receive_auth_key().display())),
    }
    if let Some(addr) = read_text(&dir.p2p_addr())? {
        out.push(put(NODE, P2P_ADDR, addr.trim().as_bytes().to_vec()));
    }
    Ok(out)
}

fn read_text(path: &std::path::Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).context(format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests;
