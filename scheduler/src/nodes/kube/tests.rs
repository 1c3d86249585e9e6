//! The launcher's contract with the API server, against a fake one that keeps a Pod and a
//! Secret: the exact calls of a start, the Pod and Secret it asks for, a predecessor's Pod
//! adopted or replaced, a start given up, a watch that fails, and the deletes.

use std::sync::{Arc, Mutex};

use http::{Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::SendResponse;

use super::*;

const NS: &str = "skylight";
const NODE: [u8; 33] = [2; 33];

/// One call the launcher made.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    path: String,
    query: String,
    body: Value,
}

impl Call {
    fn is(&self, method: &str, path: &str) -> bool {
        self.method == method && self.path == path
    }
}

/// What the fake API server holds: at most the tenant's Pod and its Secret.
#[derive(Default)]
struct Cluster {
    pod: Option<Value>,
    secret: Option<Value>,
    uids: u32,
    /// Whether a created Pod is ready at once (else it stays Pending).
    created_pending: bool,
    /// How many lists of Pods to fail (500) before answering.
    failing_lists: u32,
    /// How many empty pages (with a continue token) to answer before the Pod's.
    empty_pages: u32,
    /// Watch requests, held open and never answered (the lists say all there is).
    held: Vec<SendResponse<Response<Body>>>,
    calls: Vec<Call>,
}

type Shared = Arc<Mutex<Cluster>>;

fn pods_path() -> String {
    format!("/api/v1/namespaces/{NS}/pods")
}
fn pod_path() -> String {
    format!("{}/{}", pods_path(), spec::name(&NODE))
}
fn secret_path() -> String {
    format!("/api/v1/namespaces/{NS}/secrets/{}", spec::name(&NODE))
}

fn ready() -> Value {
    json!({"phase": "Running", "podIP": "10.4.0.7",
           "conditions": [{"type": "Ready", "status": "True"}]})
}

/// A Pod under the tenant's name, of `uid`, with `status`.
fn pod(uid: &str, status: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": spec::name(&NODE), "namespace": NS, "uid": uid, "resourceVersion": "7"},
        "spec": {"containers": [{"name": "node-host"}]},
        "status": status,
    })
}

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "reason": reason, "code": code, "message": reason})
}

/// A client whose API server is `cluster`.
fn mocked(cluster: Cluster) -> (kube::Client, Shared) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let shared = Arc::new(Mutex::new(cluster));
    let fake = shared.clone();
    tokio::spawn(async move {
        while let Some((request, respond)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect().await.unwrap().to_bytes();
            let call = Call {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                query: parts.uri.query().unwrap_or_default().to_string(),
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            };
            let mut cluster = fake.lock().unwrap();
            cluster.calls.push(call.clone());
            if call.method == "GET" && call.query.contains("watch=true") {
                cluster.held.push(respond);
                continue;
            }
            let (code, answer) = cluster.answer(&call);
            respond.send_response(
                Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap(),
            );
        }
    });
    (kube::Client::new(service, NS), shared)
}

impl Cluster {
    fn answer(&mut self, call: &Call) -> (u16, Value) {
        let found = |v: &Option<Value>| {
            v.clone()
                .map_or((404, status(404, "NotFound")), |v| (200, v))
        };
        if call.is("GET", &pod_path()) {
            found(&self.pod)
        } else if call.is("GET", &pods_path()) {
            if self.failing_lists > 0 {
                self.failing_lists -= 1;
                return (500, status(500, "InternalError"));
            }
            if self.empty_pages > 0 {
                self.empty_pages -= 1;
                return (
                    200,
                    json!({"apiVersion": "v1", "kind": "PodList",
                           "metadata": {"resourceVersion": "8", "continue": "next-page"},
                           "items": []}),
                );
            }
            (
                200,
                json!({"apiVersion": "v1", "kind": "PodList",
                         "metadata": {"resourceVersion": "8"},
                         "items": self.pod.iter().collect::<Vec<_>>()}),
            )
        } else if call.is("POST", &pods_path()) {
            if self.pod.is_some() {
                return (409, status(409, "AlreadyExists"));
            }
            self.uids += 1;
            let state = if self.created_pending {
                json!({"phase": "Pending"})
            } else {
                ready()
            };
            let mut created = pod(&format!("uid-{}", self.uids), state);
            created["spec"] = call.body["spec"].clone();
            self.pod = Some(created.clone());
            (201, created)
        } else if call.is("DELETE", &pod_path()) {
            let Some(current) = self.pod.clone() else {
                return (404, status(404, "NotFound"));
            };
            let wanted = &call.body["preconditions"]["uid"];
            if !wanted.is_null() && *wanted != current["metadata"]["uid"] {
                return (409, status(409, "Conflict"));
            }
            self.pod = None;
            // The garbage collector: the Secret goes with its owner.
            if self.secret.as_ref().is_some_and(|s| {
                s["metadata"]["ownerReferences"][0]["uid"] == current["metadata"]["uid"]
            }) {
                self.secret = None;
            }
            (200, current)
        } else if call.is("DELETE", &secret_path()) {
            let answer = found(&self.secret);
            self.secret = None;
            answer
        } else if call.is("POST", &format!("/api/v1/namespaces/{NS}/secrets")) {
            if self.secret.is_some() {
                return (409, status(409, "AlreadyExists"));
            }
            self.secret = Some(call.body.clone());
            (201, call.body.clone())
        } else {
            (404, status(404, "NotFound"))
        }
    }
}

fn calls(shared: &Shared) -> Vec<Call> {
    shared.lock().unwrap().calls.clone()
}

fn settings() -> KubeSettings {
    KubeSettings {
        namespace: NS.into(),
        image: "registry.example/skylight/node-host:1".into(),
        grpc_port: 19737,
        health_port: 19738,
        p2p_port: 9735,
    }
}

fn plan() -> NodePod {
    NodePod {
        node_id: NODE,
        image: settings().image,
        args: vec![
            "--node-id".into(),
            hex::encode(NODE),
            "--health-listen".into(),
            "0.0.0.0:19738".into(),
        ],
        grpc_port: 19737,
        health_port: 19738,
        p2p_port: 9735,
        files: BTreeMap::from([
            ("server-key.pem".to_string(), b"KEY".to_vec()),
            (
                "state-database-url".to_string(),
                b"postgres://u:secret@db/s".to_vec(),
            ),
        ]),
    }
}

async fn start(client: kube::Client, timeout: Duration) -> Result<Arc<dyn Started>, Error> {
    KubeLauncher::new(client, settings())
        .start_pod(plan(), timeout)
        .await
}

#[test]
fn a_tenants_pod_and_secret_have_one_fixed_name_and_labels_within_kubernetes_limits() {
    let name = spec::name(&NODE);
    assert!(name.starts_with("sky-node-") && name.len() <= 63, "{name}");
    assert_ne!(name, spec::name(&[3; 33]));
    let pod = plan().pod();
    let labels = pod.metadata.labels.unwrap();
    assert!(labels.values().all(|v| v.len() <= 63));
    assert_eq!(
        pod.metadata.annotations.unwrap()[spec::NODE_ID_ANNOTATION],
        hex::encode(NODE)
    );
    let spec = pod.spec.unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(spec.automount_service_account_token, Some(false));
    let c = &spec.containers[0];
    // Ready is node-host's plaintext health service saying SERVING, on its own port.
    let probe = c.readiness_probe.as_ref().unwrap().grpc.as_ref().unwrap();
    assert_eq!(probe.port, 19738);
    assert!(plan().args.iter().any(|a| a == "--health-listen"));
    // Every file of the Secret is in the node directory, read only; nothing secret is on
    // the command line.
    let mounts = c.volume_mounts.as_ref().unwrap();
    for file in ["server-key.pem", "state-database-url"] {
        let m = mounts
            .iter()
            .find(|m| m.sub_path.as_deref() == Some(file))
            .unwrap();
        assert_eq!(m.mount_path, format!("{NODE_DIR}/{file}"));
        assert_eq!(m.read_only, Some(true));
    }
    assert!(
        !c.args
            .as_ref()
            .unwrap()
            .iter()
            .any(|a| a.contains("secret"))
    );
    // The "restricted" Pod security standard, with a user that can read the Secret's
    // files (root's, and the Pod's group's).
    let pod_security = spec.security_context.as_ref().unwrap();
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(pod_security.run_as_user, Some(spec::NODE_USER));
    assert_eq!(pod_security.fs_group, Some(spec::NODE_USER));
    assert_eq!(
        pod_security.seccomp_profile.as_ref().unwrap().type_,
        "RuntimeDefault"
    );
    let security = c.security_context.as_ref().unwrap();
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.as_ref().unwrap().drop,
        Some(vec!["ALL".to_string()])
    );
    let secret_volume = spec.volumes.unwrap()[1].secret.clone().unwrap();
    assert_eq!(secret_volume.default_mode, Some(0o440));
    let secret = plan().secret("uid-9");
    let owner = &secret.metadata.owner_references.unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Pod", "uid-9"));
}

#[tokio::test]
async fn a_start_creates_the_pod_then_its_secret_owned_by_it_and_waits_until_ready() {
    let (client, cluster) = mocked(Cluster::default());
    let started = start(client, Duration::from_secs(10)).await.unwrap();
    assert_eq!(started.uri(), "https://10.4.0.7:19737");
    assert!(started.alive());
    assert_eq!(started.pid(), None);

    let calls = calls(&cluster);
    assert!(calls[0].is("GET", &pod_path()), "is a Pod there already?");
    assert!(
        calls[1].is("DELETE", &secret_path()),
        "no earlier start's Secret is mounted"
    );
    let pod = &calls[2];
    assert!(pod.is("POST", &pods_path()));
    assert!(
        pod.query.contains("fieldManager=skylight-scheduler"),
        "{}",
        pod.query
    );
    assert_eq!(pod.body["metadata"]["name"], spec::name(&NODE));
    assert_eq!(pod.body["spec"]["containers"][0]["image"], settings().image);
    let secret = &calls[3];
    assert!(secret.is("POST", &format!("/api/v1/namespaces/{NS}/secrets")));
    assert_eq!(secret.body["kind"], "Secret");
    assert_eq!(
        secret.body["metadata"]["ownerReferences"][0],
        json!({"apiVersion": "v1", "kind": "Pod", "name": spec::name(&NODE), "uid": "uid-1"}),
        "made with its owner in one write"
    );
    // base64 of "postgres://u:secret@db/s": the URL travels in the Secret only.
    assert_eq!(
        secret.body["data"]["state-database-url"],
        "cG9zdGdyZXM6Ly91OnNlY3JldEBkYi9z"
    );
    let watch = &calls[4];
    assert!(watch.is("GET", &pods_path()));
    assert!(
        watch
            .query
            .contains(&format!("metadata.name%3D{}", spec::name(&NODE))),
        "the watch is of this Pod alone: {}",
        watch.query
    );
}

#[tokio::test]
async fn a_running_pod_a_dead_scheduler_left_is_adopted_not_duplicated_or_cut_off() {
    let (client, cluster) = mocked(Cluster {
        pod: Some(pod("uid-old", ready())),
        ..Default::default()
    });
    let started = start(client, Duration::from_secs(10)).await.unwrap();
    assert_eq!(started.uri(), "https://10.4.0.7:19737");
    assert!(
        !calls(&cluster)
            .iter()
            .any(|c| c.method == "POST" || c.method == "DELETE"),
        "nothing created or deleted: {:?}",
        calls(&cluster)
    );
    // Supervised from here on: stopping it deletes that Pod and no other.
    started.stop(Duration::from_secs(8)).await;
    let delete = calls(&cluster).last().unwrap().clone();
    assert!(delete.is("DELETE", &pod_path()));
    assert_eq!(delete.body["preconditions"]["uid"], "uid-old");
    assert!(cluster.lock().unwrap().pod.is_none());
}

#[tokio::test]
async fn an_ended_pod_left_under_the_name_is_deleted_and_a_new_one_started() {
    let (client, cluster) = mocked(Cluster {
        pod: Some(pod(
            "uid-old",
            json!({"phase": "Succeeded", "podIP": "10.4.0.7"}),
        )),
        ..Default::default()
    });
    let started = start(client, Duration::from_secs(10)).await.unwrap();
    assert_eq!(started.uri(), "https://10.4.0.7:19737");
    let calls = calls(&cluster);
    let delete = calls.iter().find(|c| c.method == "DELETE").unwrap();
    assert!(delete.is("DELETE", &pod_path()));
    assert_eq!(delete.body["preconditions"]["uid"], "uid-old");
    assert_eq!(delete.body["gracePeriodSeconds"], 0);
    let cluster = cluster.lock().unwrap();
    assert_eq!(cluster.pod.as_ref().unwrap()["metadata"]["uid"], "uid-1");
    assert_eq!(
        cluster.secret.as_ref().unwrap()["metadata"]["ownerReferences"][0]["uid"],
        "uid-1"
    );
}

#[tokio::test]
async fn a_pod_that_is_not_ready_in_time_is_deleted_with_its_secret() {
    let (client, cluster) = mocked(Cluster {
        created_pending: true,
        ..Default::default()
    });
    let err = start(client, Duration::from_secs(1))
        .await
        .err()
        .expect("given up");
    assert!(
        matches!(err, Error::Unavailable(ref m) if m.contains("not ready within 1 s")),
        "{err}"
    );
    // The delete is made as the start is dropped: give it a moment.
    for _ in 0..100 {
        if cluster.lock().unwrap().pod.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cluster = cluster.lock().unwrap();
    assert!(cluster.pod.is_none(), "the Pod created was deleted");
    assert!(cluster.secret.is_none(), "and its Secret with it");
}

#[tokio::test]
async fn stopping_deletes_this_starts_pod_with_the_grace_given() {
    let (client, cluster) = mocked(Cluster::default());
    let started = start(client, Duration::from_secs(10)).await.unwrap();
    started.stop(Duration::from_secs(8)).await;
    let delete = calls(&cluster).last().unwrap().clone();
    assert!(delete.is("DELETE", &pod_path()));
    assert_eq!(delete.body["gracePeriodSeconds"], 8);
    assert_eq!(
        delete.body["preconditions"]["uid"], "uid-1",
        "never a later start's Pod"
    );
}

fn host(client: kube::Client) -> KubeNodeHost {
    KubeNodeHost {
        pods: Api::namespaced(client, NS),
        name: spec::name(&NODE),
        uid: "uid-1".into(),
        uri: "https://10.4.0.7:19737".into(),
        ended: AtomicBool::new(false),
    }
}

#[tokio::test]
async fn a_pod_whose_node_host_exited_is_seen_ended_and_deleted_so_its_name_is_free() {
    let (client, cluster) = mocked(Cluster {
        pod: Some(pod("uid-1", json!({"phase": "Succeeded"}))),
        ..Default::default()
    });
    let started = host(client);
    assert_eq!(
        started.exited().await,
        Ok(()),
        "an idle exit is a clean stop"
    );
    assert!(!started.alive());
    assert!(calls(&cluster).last().unwrap().is("DELETE", &pod_path()));
    assert!(cluster.lock().unwrap().pod.is_none());
}

#[tokio::test]
async fn a_failing_watch_is_watched_again_and_never_taken_for_an_exit() {
    // Running: a failed list of Pods is no news of it, and it is left alone.
    let (client, cluster) = mocked(Cluster {
        pod: Some(pod("uid-1", ready())),
        failing_lists: 1,
        ..Default::default()
    });
    let running = host(client);
    let waited = tokio::time::timeout(Duration::from_secs(3), running.exited()).await;
    assert!(waited.is_err(), "not taken for gone: {waited:?}");
    assert!(running.alive());
    let calls = calls(&cluster);
    assert!(
        calls.iter().filter(|c| c.is("GET", &pods_path())).count() >= 2,
        "watched again after the failure: {calls:?}"
    );
    assert!(!calls.iter().any(|c| c.method == "DELETE"), "{calls:?}");

    // Ended: seen through the failures, as the clean stop it was.
    let (client, cluster) = mocked(Cluster {
        pod: Some(pod("uid-1", json!({"phase": "Succeeded"}))),
        failing_lists: 2,
        ..Default::default()
    });
    assert_eq!(host(client).exited().await, Ok(()));
    assert!(cluster.lock().unwrap().pod.is_none());
}

#[tokio::test]
async fn an_ended_pod_nobody_supervises_is_reaped_with_its_secret() {
    let mut ended = pod("uid-1", json!({"phase": "Failed"}));
    ended["metadata"]["labels"] = json!({"app.kubernetes.io/name": "skylight-node-host"});
    let secret = json!({"metadata": {"name": spec::name(&NODE),
                        "ownerReferences": [{"uid": "uid-1"}]}});
    let (client, cluster) = mocked(Cluster {
        pod: Some(ended),
        secret: Some(secret),
        ..Default::default()
    });
    let launcher = KubeLauncher::new(client, settings());
    assert_eq!(launcher.reap_ended().await.unwrap(), 1);
    let calls = calls(&cluster);
    let list = calls.iter().find(|c| c.is("GET", &pods_path())).unwrap();
    assert!(
        list.query
            .contains("labelSelector=app.kubernetes.io%2Fname%3Dskylight-node-host"),
        "only node-host Pods are listed: {}",
        list.query
    );
    let delete = calls.iter().find(|c| c.is("DELETE", &pod_path())).unwrap();
    assert_eq!(
        delete.body["preconditions"]["uid"], "uid-1",
        "the uid seen, never a later start's Pod"
    );
    let cluster = cluster.lock().unwrap();
    assert!(cluster.pod.is_none());
    assert!(cluster.secret.is_none(), "its Secret went with it");
}

#[tokio::test]
async fn a_running_or_deleting_pod_is_never_reaped() {
    let mut deleting = pod("uid-1", json!({"phase": "Succeeded"}));
    deleting["metadata"]["deletionTimestamp"] = json!("2026-12-04T10:00:00Z");
    for left in [pod("uid-1", ready()), deleting] {
        let (client, cluster) = mocked(Cluster {
            pod: Some(left),
            ..Default::default()
        });
        let launcher = KubeLauncher::new(client, settings());
        assert_eq!(launcher.reap_ended().await.unwrap(), 0);
        let calls = calls(&cluster);
        assert!(!calls.iter().any(|c| c.method == "DELETE"), "{calls:?}");
        assert!(cluster.lock().unwrap().pod.is_some());
    }
}

#[tokio::test]
async fn a_failed_list_is_an_error_for_the_next_round_and_deletes_nothing() {
    let (client, cluster) = mocked(Cluster {
        pod: Some(pod("uid-1", json!({"phase": "Succeeded"}))),
        failing_lists: 1,
        ..Default::default()
    });
    let launcher = KubeLauncher::new(client, settings());
    assert!(launcher.reap_ended().await.is_err());
    assert!(cluster.lock().unwrap().pod.is_some());
    assert_eq!(
        launcher.reap_ended().await.unwrap(),
        1,
        "the next round reaps it"
    );
}

#[tokio::test]
async fn the_reaper_reads_every_page_of_a_long_list() {
    let (client, cluster) = mocked(Cluster {
        pod: Some(pod("uid-1", json!({"phase": "Succeeded"}))),
        empty_pages: 2,
        ..Default::default()
    });
    let launcher = KubeLauncher::new(client, settings());
    assert_eq!(launcher.reap_ended().await.unwrap(), 1);
    let lists: Vec<_> = calls(&cluster)
        .into_iter()
        .filter(|c| c.is("GET", &pods_path()))
        .collect();
    assert_eq!(lists.len(), 3, "{lists:?}");
    assert!(lists[0].query.contains("limit=500"), "{}", lists[0].query);
    assert!(
        lists[1].query.contains("continue=next-page"),
        "{}",
        lists[1].query
    );
}
