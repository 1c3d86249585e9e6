//! Reading a node-host Pod's state: the conditions a start and a supervisor wait for, and
//! a watch of one Pod that outlasts the API server's hiccups.

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::watch_object;
use tokio_stream::StreamExt;

/// Whether the Pod's readiness probe passes.
pub fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The Pod's phase, as the kubelet reports it.
pub fn phase(p: &Pod) -> Option<&str> {
    p.status.as_ref().and_then(|s| s.phase.as_deref())
}

/// Whether its node-host has exited (a bare Pod that never restarts stays ended).
pub fn has_ended(p: &Pod) -> bool {
    matches!(phase(p), Some("Succeeded" | "Failed"))
}

/// Whether the API server is deleting it (it still holds the name meanwhile).
pub fn is_deleting(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

/// The Pod's uid: what tells one start's Pod from a later one of the same name.
pub fn uid(p: &Pod) -> &str {
    p.metadata.uid.as_deref().unwrap_or_default()
}

/// Waits until the Pod named `name` (or its absence, `None`) meets `done`, and returns it.
/// An error of the watch (the API server restarting, a dropped connection, a 5xx) is not
/// an answer about the Pod: it is logged and the watch starts again after a backoff, so a
/// healthy node-host is never taken for gone. Bound it with a timeout where one applies.
pub async fn until(api: &Api<Pod>, name: &str, done: impl Fn(Option<&Pod>) -> bool) -> Option<Pod> {
    let mut seen = std::pin::pin!(watch_object(api.clone(), name).default_backoff());
    loop {
        match seen.next().await {
            Some(Ok(pod)) if done(pod.as_ref()) => return pod,
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::warn!(pod = %name, error = %e, "watching a node-host Pod failed; watching again")
            }
            // The watcher never ends by itself; if it does, start a new one.
            None => seen.set(watch_object(api.clone(), name).default_backoff()),
        }
    }
}
