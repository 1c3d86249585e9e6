//! Deleting node-host Pods that have ended and that no start of this scheduler watches.
//!
//! A scheduler that dies (or is replaced by a rollout) leaves its tenants' Pods behind.
//! A running one is harmless: its tenant's next Schedule adopts it, and its node-host
//! idles out by itself. But once it has ended, nothing deletes it, and an ended Pod keeps
//! its Secret (that start's server key and the database's credentials) for as long as it
//! exists. The reaper lists the node-host Pods of the namespace at the scheduler's start
//! and then periodically, and deletes every ended one; the Secret goes with it (its owner).
//!
//! Deleting an ended Pod is always safe, whoever else looks at it: nothing runs in it, a
//! start that finds it deletes it too, and each delete names the uid it saw, so a later
//! start's Pod under the same name is never touched.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use super::{KubeLauncher, spec, watch};
use crate::shutdown::Shutdown;

/// How often ended Pods are looked for after the first look at the start. A minute keeps
/// a dead Pod's Secret short-lived at one list call a minute, however many tenants.
pub const REAP_EVERY: Duration = Duration::from_secs(60);

/// Pods asked for in one list call: a namespace of many thousand tenants is read in pages.
const PAGE: u32 = 500;

impl KubeLauncher {
    /// Deletes every node-host Pod of the namespace that has ended and is not being
    /// deleted yet. Returns how many it deleted.
    pub async fn reap_ended(&self) -> Result<usize, kube::Error> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.settings.namespace);
        let selector = format!("{}={}", spec::APP_LABEL.0, spec::APP_LABEL.1);
        let mut params = ListParams::default().labels(&selector).limit(PAGE);
        let mut deleted = 0;
        loop {
            let page = pods.list(&params).await?;
            for pod in &page.items {
                let Some(name) = pod.metadata.name.as_deref() else {
                    continue;
                };
                if watch::has_ended(pod)
                    && !watch::is_deleting(pod)
                    && self.host(name, watch::uid(pod)).try_delete(0).await
                {
                    tracing::info!(pod = %name, phase = ?watch::phase(pod), "deleted an ended node-host Pod");
                    deleted += 1;
                }
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(deleted),
            }
        }
    }

    /// Reaps now and every `REAP_EVERY` until `shutdown`. A failed look is logged and
    /// tried again at the next round: nothing depends on it but tidiness and the life of
    /// ended Pods' Secrets.
    pub async fn reap_until(self: Arc<Self>, shutdown: Shutdown) {
        loop {
            match self.reap_ended().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pods = n, "deleted ended node-host Pods"),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list node-host Pods to delete the ended ones; trying again later")
                }
            }
            tokio::select! {
                () = shutdown.wait() => return,
                () = tokio::time::sleep(REAP_EVERY) => {}
            }
        }
    }
}
