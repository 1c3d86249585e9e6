//! The Kubernetes launcher: each running tenant's node-host a bare Pod, placed by the
//! cluster, its node state in PostgreSQL (a Pod has no disk of its own that outlives it).
//!
//! A start puts that start's certificates and credentials in a Secret, creates the Pod
//! (see [`spec`]), makes the Pod the Secret's owner (the Secret goes with the Pod), waits
//! for the Pod to be ready by watching it, and gives clients the Pod's address. A Pod
//! whose node-host has exited (idle, or failed) is deleted, so the next start can take
//! its name. The fixed name makes the API server refuse a second Pod for a tenant while
//! one exists; the tenant's lease in PostgreSQL fences a node-host the cluster lost track
//! of (a partitioned kubelet, a force-deleted Pod).

pub mod spec;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bitcoin::secp256k1::PublicKey;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use skylight_client::chain::RpcAuth;
use skylight_node_host::config as node_host;

use super::NodeManager;
use super::launcher::{Boxed, Launcher, Started};
use super::local::ServerFiles;
use crate::error::Error;
use spec::{NODE_DIR, NodePod};

/// The field manager the scheduler's writes are made as.
const FIELD_MANAGER: &str = "skylight-scheduler";

/// Where and how node-host Pods run.
#[derive(Debug, Clone)]
pub struct KubeSettings {
    /// The namespace of every node-host Pod and Secret.
    pub namespace: String,
    /// The node-host image.
    pub image: String,
    /// The port node-host's gRPC listens on in its Pod.
    pub grpc_port: u16,
    /// The port it listens on for Lightning peers.
    pub p2p_port: u16,
}

/// Node-hosts as Pods.
pub struct KubeLauncher {
    client: kube::Client,
    settings: KubeSettings,
}

fn unavailable(what: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!(
        "the node could not be started ({what}); try again, and if it persists the operator's log has details"
    ))
}

fn api_error(what: &str, e: kube::Error) -> Error {
    tracing::warn!(error = %e, "Kubernetes: {what}");
    unavailable(format!("Kubernetes refused to {what}"))
}

/// The HTTP status the API server answered with, if it answered.
fn status_of(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

impl KubeLauncher {
    /// A launcher using `client` (in a cluster: `kube::Client::try_default()`).
    pub fn new(client: kube::Client, settings: KubeSettings) -> Self {
        KubeLauncher { client, settings }
    }

    /// What one start of `node_id`'s node-host is made of.
    async fn plan(&self, m: &NodeManager, node_id: &[u8; 33]) -> Result<NodePod, Error> {
        let node_hex = hex::encode(node_id);
        let (store, id) = (m.store.clone(), *node_id);
        let (ca, revoked) = crate::state::blocking(move || {
            Ok((
                store.tenant_ca(&id)?,
                crate::revocations::node_file(&store, &id)?,
            ))
        })
        .await?;
        let ca =
            ca.ok_or_else(|| Error::NotFound(format!("node {node_hex} is not registered here")))?;
        let server = ServerFiles::issue(m, &ca, &node_hex)?;
        let s = &m.settings;
        let Some(url_file) = &s.node_host.state_database_url_file else {
            return Err(Error::Internal(
                "the Kubernetes launcher needs node state in PostgreSQL (--node-state-database-url-file)"
                    .into(),
            ));
        };
        let url = std::fs::read(url_file)
            .map_err(|e| unavailable(format!("cannot read {}: {e}", url_file.display())))?;
        let node_key = PublicKey::from_slice(node_id)
            .map_err(|_| Error::Internal(format!("{node_hex} is not a public key")))?;
        let dir = skylight_node_host::paths::NodeDir::new(NODE_DIR);
        let mut config =
            node_host::Config::new(node_key, NODE_DIR.into(), s.chain.url().to_string());
        config.network = s.network;
        s.node_host.apply(&mut config);
        config.listen = std::net::SocketAddr::from(([0, 0, 0, 0], self.settings.grpc_port));
        config.p2p_listen = std::net::SocketAddr::from(([0, 0, 0, 0], self.settings.p2p_port));
        config.p2p_announce = s.p2p.announce.clone();
        config.state_database_url_file = Some(dir.state_database_url());
        let name_of = |p: std::path::PathBuf| {
            p.file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
                .unwrap_or_default()
        };
        let mut files = BTreeMap::from([
            (name_of(dir.server_cert()), server.chain_pem.into_bytes()),
            (name_of(dir.server_key()), server.key_pem.into_bytes()),
            (name_of(dir.tenant_ca()), server.tenant_ca_pem.into_bytes()),
            (name_of(dir.revoked_devices()), revoked.into_bytes()),
            (name_of(dir.state_database_url()), url),
        ]);
        // The chain's credentials travel in the Secret too: the operator's cookie file is
        // on the scheduler's machine, not the Pod's.
        match &s.chain.auth {
            RpcAuth::None => {}
            RpcAuth::Cookie(cookie) => {
                let text = std::fs::read(cookie)
                    .map_err(|e| unavailable(format!("cannot read {}: {e}", cookie.display())))?;
                files.insert(name_of(dir.bitcoind_auth()), text);
                config.bitcoind_cookie = Some(dir.bitcoind_auth());
            }
            RpcAuth::UserPassword { user, password } => {
                files.insert(
                    name_of(dir.bitcoind_auth()),
                    format!("{user}:{password}").into_bytes(),
                );
                config.bitcoind_cookie = Some(dir.bitcoind_auth());
            }
        }
        let args = config
            .to_args()
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        Ok(NodePod {
            node_id: *node_id,
            image: self.settings.image.clone(),
            args,
            grpc_port: self.settings.grpc_port,
            p2p_port: self.settings.p2p_port,
            files,
        })
    }

    async fn start_pod(&self, plan: NodePod, timeout: Duration) -> Result<Arc<dyn Started>, Error> {
        let ns = &self.settings.namespace;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let name = spec::name(&plan.node_id);
        // Applied, not created: a Secret left by a start that failed before its Pod owned
        // it is simply replaced.
        secrets
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&plan.secret()),
            )
            .await
            .map_err(|e| api_error("store the node's certificates", e))?;
        let pod = match pods.create(&PostParams::default(), &plan.pod()).await {
            Ok(pod) => pod,
            Err(e) if status_of(&e) == Some(409) => {
                return Err(Error::Unavailable(
                    "the node's previous Pod is still there (it is stopping); try again in a \
                     few seconds"
                        .into(),
                ));
            }
            Err(e) => return Err(api_error("create the node's Pod", e)),
        };
        let started = KubeNodeHost {
            pods: pods.clone(),
            name: name.clone(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            uri: String::new(),
            ended: AtomicBool::new(false),
        };
        // The Secret goes with the Pod.
        let owner = serde_json::json!({
            "metadata": { "ownerReferences": [{
                "apiVersion": "v1", "kind": "Pod", "name": name, "uid": started.uid,
            }]}
        });
        if let Err(e) = secrets
            .patch(&name, &PatchParams::default(), &Patch::Merge(&owner))
            .await
        {
            started.delete(0).await;
            return Err(api_error("give the node's certificates to its Pod", e));
        }
        let uid = started.uid.clone();
        let ready = tokio::time::timeout(
            timeout,
            await_condition(pods.clone(), &name, move |p: Option<&Pod>| {
                p.is_some_and(|p| {
                    p.metadata.uid.as_deref() == Some(uid.as_str())
                        && (is_ready(Some(p)) || has_ended(p))
                })
            }),
        )
        .await;
        let pod = match ready {
            Ok(Ok(Some(pod))) if is_ready(Some(&pod)) => pod,
            Ok(Ok(_)) => {
                started.delete(0).await;
                return Err(unavailable("its Pod ended before it was ready"));
            }
            Ok(Err(e)) => {
                started.delete(0).await;
                return Err(unavailable(format!("watching its Pod failed: {e}")));
            }
            Err(_) => {
                started.delete(0).await;
                return Err(unavailable(format!(
                    "its Pod was not ready within {} s",
                    timeout.as_secs()
                )));
            }
        };
        let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) else {
            started.delete(0).await;
            return Err(unavailable("its Pod is ready but has no address"));
        };
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip
        };
        Ok(Arc::new(KubeNodeHost {
            uri: format!("https://{host}:{}", self.settings.grpc_port),
            ..started
        }))
    }
}

fn is_ready(p: Option<&Pod>) -> bool {
    p.and_then(|p| p.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn phase(p: &Pod) -> Option<&str> {
    p.status.as_ref().and_then(|s| s.phase.as_deref())
}

fn has_ended(p: &Pod) -> bool {
    matches!(phase(p), Some("Succeeded" | "Failed"))
}

impl Launcher for KubeLauncher {
    fn start<'a>(
        &'a self,
        manager: &'a NodeManager,
        node_id: &'a [u8; 33],
    ) -> Boxed<'a, Result<Arc<dyn Started>, Error>> {
        Box::pin(async move {
            let plan = self.plan(manager, node_id).await?;
            self.start_pod(plan, manager.settings.start_timeout).await
        })
    }
}

/// A node-host running in a Pod.
struct KubeNodeHost {
    pods: Api<Pod>,
    name: String,
    /// This start's Pod (a later one has the same name, not the same uid).
    uid: String,
    uri: String,
    ended: AtomicBool,
}

impl KubeNodeHost {
    /// Deletes this start's Pod (its Secret goes with it), `grace` seconds given.
    async fn delete(&self, grace: u32) {
        let params = DeleteParams {
            grace_period_seconds: Some(grace),
            preconditions: Some(kube::api::Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match self.pods.delete(&self.name, &params).await {
            Ok(_) => {}
            Err(e) if matches!(status_of(&e), Some(404 | 409)) => {}
            Err(e) => tracing::warn!(pod = %self.name, error = %e, "cannot delete a node-host Pod"),
        }
    }
}

impl Started for KubeNodeHost {
    fn uri(&self) -> &str {
        &self.uri
    }

    fn pid(&self) -> Option<u32> {
        None
    }

    fn alive(&self) -> bool {
        !self.ended.load(Ordering::SeqCst)
    }

    fn stop(&self, grace: Duration) -> Boxed<'_, ()> {
        Box::pin(self.delete(grace.as_secs().min(u32::MAX.into()) as u32))
    }

    fn exited(&self) -> Boxed<'_, Result<(), String>> {
        Box::pin(async move {
            let uid = self.uid.clone();
            let gone = await_condition(self.pods.clone(), &self.name, move |p: Option<&Pod>| {
                p.is_none_or(|p| p.metadata.uid.as_deref() != Some(uid.as_str()) || has_ended(p))
            })
            .await;
            self.ended.store(true, Ordering::SeqCst);
            let how = match &gone {
                Ok(Some(p)) if p.metadata.uid.as_deref() == Some(self.uid.as_str()) => {
                    match phase(p) {
                        Some("Succeeded") => Ok(()),
                        other => Err(format!("its Pod ended {}", other.unwrap_or("unknown"))),
                    }
                }
                Ok(_) => Err("its Pod was deleted".to_string()),
                Err(e) => Err(format!("lost track of its Pod: {e}")),
            };
            // An ended Pod keeps its name until deleted: the next start needs it.
            self.delete(0).await;
            how
        })
    }
}

#[cfg(test)]
mod tests;
