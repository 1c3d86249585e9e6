//! Revoked devices: refused by the scheduler on every call, and by the tenant's node-host,
//! which reads the list the scheduler writes into its node directory.
//!
//! The store is the record (it survives restarts); the set here is its copy in memory, so
//! that the check every call makes costs no database read. A node-host learns of a
//! revocation from its `revoked-devices` file: written at every start, and again at each
//! revocation while the node directory exists.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use skylight_certs::PeerIdentity;
use skylight_node_host::paths::NodeDir;
use tonic::{Request, Status};

use crate::error::Error;
use crate::store::Store;
use crate::store::records::DeviceRecord;

/// The revoked devices of every tenant.
pub struct Revocations {
    store: Store,
    nodes_dir: PathBuf,
    revoked: RwLock<HashSet<([u8; 33], String)>>,
}

impl Revocations {
    /// Loads what `store` records; node directories live under `nodes_dir`.
    pub fn load(store: Store, nodes_dir: PathBuf) -> Result<Self, Error> {
        let revoked = store.revoked_devices()?.into_iter().collect();
        Ok(Revocations {
            store,
            nodes_dir,
            revoked: RwLock::new(revoked),
        })
    }

    /// Whether the device `name` of `node_id` is revoked.
    pub fn is_revoked(&self, node_id: &[u8; 33], name: &str) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&(*node_id, name.to_string()))
    }

    /// Revokes the device `name` of `node_id`: durably first, then for every later call,
    /// then in the node's directory. Blocking (the store).
    pub fn revoke(&self, node_id: &[u8; 33], name: &str) -> Result<DeviceRecord, Error> {
        let record = self
            .store
            .revoke_device(node_id, name, crate::store::now())?;
        self.revoked
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert((*node_id, name.to_string()));
        let dir = NodeDir::new(self.nodes_dir.join(hex::encode(node_id)));
        if dir.root().is_dir() {
            write_node_file(&self.store, &dir, node_id)?;
        }
        tracing::warn!(node_id = %hex::encode(node_id), device = name, "device revoked");
        Ok(record)
    }

    /// Takes in what other schedulers on a shared store revoked: every later call of such
    /// a device is refused here too, and the node directories this scheduler keeps are
    /// told. Returns how many revocations were new. Blocking (the store).
    pub fn refresh(&self) -> Result<usize, Error> {
        let stored: HashSet<([u8; 33], String)> =
            self.store.revoked_devices()?.into_iter().collect();
        let new: Vec<([u8; 33], String)> = {
            let mut revoked = self.revoked.write().unwrap_or_else(|p| p.into_inner());
            let new = stored.difference(&revoked).cloned().collect();
            revoked.extend(stored);
            new
        };
        for (node_id, name) in &new {
            let dir = NodeDir::new(self.nodes_dir.join(hex::encode(node_id)));
            if dir.root().is_dir() {
                write_node_file(&self.store, &dir, node_id)?;
            }
            tracing::warn!(node_id = %hex::encode(node_id), device = %name, "device revoked (by another scheduler)");
        }
        Ok(new.len())
    }

    /// [`Revocations::refresh`] every `every` until `shutdown`: how soon a device revoked
    /// through another replica is refused by this one.
    pub async fn refresh_until(
        self: Arc<Self>,
        every: std::time::Duration,
        shutdown: crate::shutdown::Shutdown,
    ) {
        loop {
            tokio::select! {
                () = shutdown.wait() => return,
                () = tokio::time::sleep(every) => {}
            }
            let this = self.clone();
            match tokio::task::spawn_blocking(move || this.refresh()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot read revoked devices; trying again")
                }
                Err(e) => tracing::warn!(error = %e, "reading revoked devices failed"),
            }
        }
    }

    /// A gRPC interceptor refusing calls from a revoked device's certificate.
    pub fn interceptor(
        self: &Arc<Self>,
    ) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone + use<> {
        let this = self.clone();
        move |req: Request<()>| {
            let device = req
                .peer_certs()
                .and_then(|certs| certs.first().cloned())
                .and_then(|leaf| PeerIdentity::from_der(leaf.as_ref()).ok());
            if let Some(PeerIdentity::Device { node_id, device }) = device
                && this.is_revoked(&node_id, &device)
            {
                return Err(Status::permission_denied(format!(
                    "this device ({device}) was revoked by its tenant or the operator: register a new device by recovering with the seed, or pair one"
                )));
            }
            Ok(req)
        }
    }
}

/// What node-host reads from its `revoked-devices` file: the tenant's revoked devices'
/// names, a JSON list.
pub fn node_file(store: &Store, node_id: &[u8; 33]) -> Result<String, Error> {
    let names: Vec<String> = store
        .devices(node_id)?
        .into_iter()
        .filter(|(_, r)| r.revoked_at.is_some())
        .map(|(name, _)| name)
        .collect();
    serde_json::to_string(&names).map_err(|e| Error::Internal(e.to_string()))
}

/// Writes the tenant's revoked devices into its node directory (replaced whole, synced).
pub fn write_node_file(store: &Store, dir: &NodeDir, node_id: &[u8; 33]) -> Result<(), Error> {
    let json = node_file(store, node_id)?;
    crate::datadir::write_public(&dir.revoked_devices(), &json)
        .map_err(|e| Error::Internal(format!("{}: {e:#}", dir.revoked_devices().display())))
}
