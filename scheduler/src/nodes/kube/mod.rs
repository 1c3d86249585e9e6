//! The Kubernetes launcher: each running tenant's node-host a bare Pod, placed by the
//! cluster, its node state in PostgreSQL (a Pod has no disk of its own that outlives it).
//!
//! A start creates the Pod (see [`spec`]), then a Secret holding that start's certificates
//! and credentials with the Pod as its owner (the Secret goes with the Pod), waits for the
//! Pod to be ready by watching it, and gives clients the Pod's address. A Pod already there
//! under the tenant's name is a predecessor's: adopted if it runs, replaced once gone if
//! it has ended. A Pod whose node-host has exited (idle, or failed) is deleted, so the next
//! start can take its name. The fixed name makes the API server refuse a second Pod for a
//! tenant while one exists; the tenant's lease in PostgreSQL fences a node-host the cluster
//! lost track of (a partitioned kubelet, a force-deleted Pod).

mod reaper;
pub mod spec;
mod watch;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bitcoin::secp256k1::PublicKey;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, PostParams};
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
    /// The port of its plaintext health service, which the readiness probe asks.
    pub health_port: u16,
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

/// How the scheduler's writes are made.
fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
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
        let dir = skylight_node_host::paths::NodeDir::new(NODE_DIR);
        let database = super::database::for_node(url_file, &dir).map_err(unavailable)?;
        let node_key = PublicKey::from_slice(node_id)
            .map_err(|_| Error::Internal(format!("{node_hex} is not a public key")))?;
        let mut config =
            node_host::Config::new(node_key, NODE_DIR.into(), s.chain.url().to_string());
        config.network = s.network;
        s.node_host.apply(&mut config);
        config.listen = std::net::SocketAddr::from(([0, 0, 0, 0], self.settings.grpc_port));
        config.health_listen = Some(std::net::SocketAddr::from((
            [0, 0, 0, 0],
            self.settings.health_port,
        )));
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
            (name_of(dir.state_database_url()), database.url.into_bytes()),
        ]);
        if let Some(ca) = database.ca {
            files.insert(name_of(dir.state_database_ca()), ca);
        }
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
            health_port: self.settings.health_port,
            p2p_port: self.settings.p2p_port,
            files,
        })
    }

    /// Starts the tenant's Pod, or takes over one already there: a Pod a scheduler that
    /// died left running (or starting) is adopted, one that has ended or is being deleted
    /// is waited out and replaced. Gives up at `timeout`, leaving nothing it created.
    async fn start_pod(&self, plan: NodePod, timeout: Duration) -> Result<Arc<dyn Started>, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let not_ready = || {
            unavailable(format!(
                "its Pod was not ready within {} s",
                timeout.as_secs()
            ))
        };
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.settings.namespace);
        let name = spec::name(&plan.node_id);
        // A few rounds at most: each one either ends the start or waits for a change.
        for _ in 0..4 {
            let found = pods
                .get_opt(&name)
                .await
                .map_err(|e| api_error("read the node's Pod", e))?;
            let Some(pod) = found else {
                match tokio::time::timeout_at(deadline, self.create(&pods, &plan)).await {
                    Ok(Ok(Some(host))) => return Ok(Arc::new(host)),
                    // Another Pod took the name meanwhile: look at it.
                    Ok(Ok(None)) => continue,
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Err(not_ready()),
                }
            };
            let host = self.host(&name, watch::uid(&pod));
            let uid = host.uid.clone();
            if watch::is_deleting(&pod) || watch::has_ended(&pod) {
                if !watch::is_deleting(&pod) {
                    host.delete(0).await;
                }
                tokio::time::timeout_at(
                    deadline,
                    watch::until(&pods, &name, |p| p.is_none_or(|p| watch::uid(p) != uid)),
                )
                .await
                .map_err(|_| {
                    unavailable(
                        "the node's previous Pod is still stopping; try again in a few seconds",
                    )
                })?;
                continue;
            }
            // Running or starting, and no start of this scheduler's: a predecessor's (it
            // died, or was restarted). Deleting it would cut off the clients and signer it
            // serves; it is the tenant's one node-host, so it is supervised from here on.
            let pod = tokio::time::timeout_at(deadline, watch::until(&pods, &name, settled(&uid)))
                .await
                .map_err(|_| not_ready())?;
            match pod {
                Some(pod)
                    if watch::uid(&pod) == uid
                        && watch::is_ready(&pod)
                        && !watch::is_deleting(&pod) =>
                {
                    tracing::info!(pod = %name, "adopted a running node-host Pod");
                    return Ok(Arc::new(host.at(&pod, self.settings.grpc_port)?));
                }
                _ => continue,
            }
        }
        Err(Error::Unavailable(
            "the node's Pod keeps changing under this start; try again in a few seconds".into(),
        ))
    }

    /// This launcher's handle on the Pod `name` of uid `uid`.
    fn host(&self, name: &str, uid: &str) -> KubeNodeHost {
        KubeNodeHost {
            pods: Api::namespaced(self.client.clone(), &self.settings.namespace),
            name: name.to_string(),
            uid: uid.to_string(),
            uri: String::new(),
            ended: AtomicBool::new(false),
        }
    }

    /// Creates the Pod and its Secret and waits for it to be ready; `None` if a Pod of the
    /// name exists already. Whatever it created is deleted if it fails or is dropped.
    async fn create(&self, pods: &Api<Pod>, plan: &NodePod) -> Result<Option<KubeNodeHost>, Error> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.settings.namespace);
        let name = spec::name(&plan.node_id);
        // A Secret an earlier start left (its Pod gone, the garbage collector not yet
        // there) must not be what the kubelet mounts: its revocation list is an older one.
        match secrets.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if status_of(&e) == Some(404) => {}
            Err(e) => return Err(api_error("remove the node's previous certificates", e)),
        }
        // The Pod first, so that the Secret is made with the Pod as its owner in one write
        // (it goes with the Pod, whatever becomes of this scheduler); the kubelet waits for
        // a Secret volume to exist before it starts the container.
        let pod = match pods.create(&post_params(), &plan.pod()).await {
            Ok(pod) => pod,
            Err(e) if status_of(&e) == Some(409) => return Ok(None),
            Err(e) => return Err(api_error("create the node's Pod", e)),
        };
        let uid = watch::uid(&pod).to_string();
        let mut undo = DeleteOnDrop(Some(self.host(&name, &uid)));
        secrets
            .create(&post_params(), &plan.secret(&uid))
            .await
            .map_err(|e| api_error("store the node's certificates", e))?;
        match watch::until(pods, &name, settled(&uid)).await {
            Some(pod) if watch::uid(&pod) == uid && watch::is_ready(&pod) => {
                let host = self.host(&name, &uid).at(&pod, self.settings.grpc_port)?;
                undo.0 = None;
                Ok(Some(host))
            }
            _ => Err(unavailable("its Pod ended before it was ready")),
        }
    }
}

/// Whether the Pod of uid `uid` has got as far as it will by itself: ready, ended, or
/// replaced (gone, or another uid under its name).
fn settled(uid: &str) -> impl Fn(Option<&Pod>) -> bool + '_ {
    move |p| p.is_none_or(|p| watch::uid(p) != uid || watch::is_ready(p) || watch::has_ended(p))
}

/// Deletes a Pod this start created unless the start gets as far as handing it out: an
/// error, a timeout or a caller that went away leaves nothing running.
struct DeleteOnDrop(Option<KubeNodeHost>);

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        // Outside a runtime (its shutdown) nothing can be sent; the Pod is then an orphan
        // the next start adopts or replaces.
        if let (Some(host), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(async move { host.delete(0).await });
        }
    }
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
    /// This handle with the address clients are given: the ready Pod's IP.
    fn at(self, pod: &Pod, grpc_port: u16) -> Result<KubeNodeHost, Error> {
        let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) else {
            return Err(unavailable("its Pod is ready but has no address"));
        };
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip
        };
        Ok(KubeNodeHost {
            uri: format!("https://{host}:{grpc_port}"),
            ..self
        })
    }

    /// Deletes this start's Pod (its Secret goes with it), `grace` seconds given.
    async fn delete(&self, grace: u32) {
        self.try_delete(grace).await;
    }

    /// [`KubeNodeHost::delete`]; whether this call deleted it (not: it was gone already, a
    /// later start's Pod has the name, or the API server failed, which is logged).
    async fn try_delete(&self, grace: u32) -> bool {
        let params = DeleteParams {
            grace_period_seconds: Some(grace),
            preconditions: Some(kube::api::Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match self.pods.delete(&self.name, &params).await {
            Ok(_) => true,
            Err(e) if matches!(status_of(&e), Some(404 | 409)) => false,
            Err(e) => {
                tracing::warn!(pod = %self.name, error = %e, "cannot delete a node-host Pod");
                false
            }
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
            let last = watch::until(&self.pods, &self.name, |p| {
                p.is_none_or(|p| watch::uid(p) != uid || watch::has_ended(p))
            })
            .await;
            self.ended.store(true, Ordering::SeqCst);
            let how = match &last {
                Some(p) if watch::uid(p) == self.uid => match watch::phase(p) {
                    Some("Succeeded") => Ok(()),
                    other => Err(format!("its Pod ended {}", other.unwrap_or("unknown"))),
                },
                _ => Err("its Pod was deleted".to_string()),
            };
            // An ended Pod keeps its name until deleted: the next start needs it.
            self.delete(0).await;
            how
        })
    }
}

#[cfg(test)]
mod tests;
