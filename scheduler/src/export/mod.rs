//! `ExportNode`: a tenant leaves with its node, and the hosted copy never runs again.
//!
//! The order is what makes it safe. The export record is committed first; every start of
//! a node-host checks it under the tenant's start lock ([`NodeManager::stop_exported`]
//! takes the same lock), so once it is stored no node-host of the tenant starts again,
//! whatever races it. Only then is the running node-host stopped, the stopped directory
//! packed and sealed to the node key ([`pack`]), the file stored, and the record marked
//! `Exported`. Every later call returns the same URL; an export a crash interrupted is
//! finished at start-up or by the next call. The file is served by [`http`] to whoever
//! holds its URL, for as long as the operator keeps exports.

pub mod http;
pub mod pack;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::nodes::NodeManager;
use crate::state::blocking;
use crate::store::Store;
use crate::store::records::{ExportRecord, ExportState};

/// The tenants' exports.
pub struct Exports {
    store: Store,
    /// Where sealed files are kept (`<data-dir>/exports`).
    dir: PathBuf,
    /// `https://host:port` of the download server.
    base_url: String,
    /// How long a file is kept after it is stored.
    keep: Duration,
    /// One export is packed at a time: it reads a whole node directory.
    packing: tokio::sync::Mutex<()>,
}

impl Exports {
    /// Exports kept in `dir`, downloaded from `base_url`, each kept for `keep`.
    pub fn new(store: Store, dir: PathBuf, base_url: String, keep: Duration) -> Self {
        Exports {
            store,
            dir,
            base_url: base_url.trim_end_matches('/').to_string(),
            keep,
            packing: tokio::sync::Mutex::new(()),
        }
    }

    /// The download URL of the export with `token`.
    pub fn url(&self, token: &str) -> String {
        format!("{}/exports/{token}", self.base_url)
    }

    /// Where the tenant's sealed file is kept.
    pub fn file(&self, node_id: &[u8; 33]) -> PathBuf {
        self.dir.join(format!("{}.export", hex::encode(node_id)))
    }

    /// How long a file is kept.
    pub fn keep(&self) -> Duration {
        self.keep
    }

    /// The store exports are recorded in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Exports the tenant's node (or finishes its export); returns the download URL.
    pub async fn export(&self, nodes: &NodeManager, node_id: &[u8; 33]) -> Result<String, Error> {
        let token = hex::encode(crate::auth::random_token()?);
        let record = {
            let (store, id) = (self.store.clone(), *node_id);
            blocking(move || store.begin_export(&id, &token)).await?
        };
        if let Some(url) = self.finished(&record)? {
            return Ok(url);
        }
        tracing::info!(node_id = %hex::encode(node_id), "export recorded: the node will not be started again");
        let _one_at_a_time = self.packing.lock().await;
        // Another call may have finished it while this one waited.
        let record = self.record(node_id).await?;
        if let Some(url) = self.finished(&record)? {
            return Ok(url);
        }
        nodes.stop_exported(node_id).await?;
        let (tenant, ca) = {
            let (store, id) = (self.store.clone(), *node_id);
            blocking(move || Ok((store.tenant(&id)?, store.tenant_ca(&id)?))).await?
        };
        let (Some(tenant), Some(ca)) = (tenant, ca) else {
            return Err(Error::Internal(format!(
                "export of {}: its tenant record is gone",
                hex::encode(node_id)
            )));
        };
        let dir = nodes.node_dir(node_id);
        let users_ca = nodes.users_ca_pem().to_string();
        let (file, id, store) = (self.file(node_id), *node_id, self.store.clone());
        let exports_dir = self.dir.clone();
        let database = nodes.node_database();
        let record = blocking(move || {
            // A node whose state is in PostgreSQL is copied out of it into its directory's
            // store first, under its lease (no node-host can write meanwhile), and packed
            // like any other; the copy goes once the sealed file is stored.
            let copied_out = match database {
                Some((url_file, ttl)) if !skylight_node_host::database::state_is_local(&dir) => {
                    let url = std::fs::read_to_string(&url_file).map_err(|e| {
                        Error::Internal(format!("{}: {e}", url_file.display()))
                    })?;
                    let key = bitcoin::secp256k1::PublicKey::from_slice(&id)
                        .map_err(|e| Error::Internal(format!("node id: {e}")))?;
                    let entries = skylight_node_host::database::copy_out(&dir, &url, key, ttl)
                        .map_err(|e| Error::Unavailable(format!(
                            "the node's state could not be read out of the operator's database ({e:#}); try again"
                        )))?;
                    tracing::info!(node_id = %hex::encode(id), entries, "node state copied out of PostgreSQL for its export");
                    true
                }
                _ => false,
            };
            let sealed = pack::seal_node(&dir, &tenant, &ca, &users_ca, &id)?;
            if copied_out {
                std::fs::remove_file(dir.ldk_store())
                    .map_err(|e| Error::Internal(format!("{}: {e}", dir.ldk_store().display())))?;
            }
            std::fs::create_dir_all(&exports_dir)
                .map_err(|e| Error::Internal(format!("{}: {e}", exports_dir.display())))?;
            skylight_client::files::replace_private(&file, &sealed)
                .map_err(|e| Error::Internal(format!("{}: {e}", file.display())))?;
            let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&sealed));
            let size = sealed.len() as u64;
            store.update_export(&id, &|r| {
                r.state = ExportState::Exported;
                r.finished_at = Some(crate::store::now());
                r.size = Some(size);
                r.sha256 = Some(digest.clone());
            })
        })
        .await?;
        tracing::info!(node_id = %hex::encode(node_id), bytes = record.size.unwrap_or(0), "node exported");
        Ok(self.url(&record.token))
    }

    async fn record(&self, node_id: &[u8; 33]) -> Result<ExportRecord, Error> {
        let (store, id) = (self.store.clone(), *node_id);
        blocking(move || store.export(&id))
            .await?
            .ok_or_else(|| Error::Internal("an export record vanished".into()))
    }

    /// The URL of a finished export; an error if its file is no longer kept.
    fn finished(&self, record: &ExportRecord) -> Result<Option<String>, Error> {
        if record.state != ExportState::Exported {
            return Ok(None);
        }
        if let Some(at) = record.deleted_at {
            return Err(Error::FailedPrecondition(format!(
                "this node was exported, and its export file was deleted at {} (unix time) once its \
                 keeping time was over; the node never runs here again. Ask the operator if you \
                 did not download it",
                at
            )));
        }
        Ok(Some(self.url(&record.token)))
    }

    /// Finishes, in the background, every export a stopped scheduler left unfinished.
    pub async fn resume(self: &Arc<Self>, state: Arc<crate::state::State>) -> Result<(), Error> {
        let store = self.store.clone();
        let pending: Vec<[u8; 33]> = blocking(move || store.exports())
            .await?
            .into_iter()
            .filter(|(_, r)| r.state == ExportState::Exporting)
            .map(|(id, _)| id)
            .collect();
        for id in pending {
            let (exports, state) = (self.clone(), state.clone());
            tokio::spawn(async move {
                tracing::info!(node_id = %hex::encode(id), "finishing an interrupted export");
                if let Err(e) = exports.export(&state.nodes, &id).await {
                    tracing::warn!(node_id = %hex::encode(id), error = %e, "interrupted export not finished; the next ExportNode call tries again");
                }
            });
        }
        Ok(())
    }

    /// Deletes the files kept longer than the operator's keeping time.
    pub async fn sweep(&self) -> Result<usize, Error> {
        let store = self.store.clone();
        let keep = self.keep.as_secs();
        let expired: Vec<[u8; 33]> = blocking(move || store.exports())
            .await?
            .into_iter()
            .filter(|(_, r)| {
                r.deleted_at.is_none()
                    && r.finished_at
                        .is_some_and(|at| at.saturating_add(keep) <= crate::store::now())
            })
            .map(|(id, _)| id)
            .collect();
        for id in &expired {
            let (store, file, id) = (self.store.clone(), self.file(id), *id);
            blocking(move || {
                match std::fs::remove_file(&file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::Internal(format!("{}: {e}", file.display()))),
                }
                store.update_export(&id, &|r| r.deleted_at = Some(crate::store::now()))?;
                tracing::info!(node_id = %hex::encode(id), "export file deleted: kept its time");
                Ok(())
            })
            .await?;
        }
        Ok(expired.len())
    }
}
