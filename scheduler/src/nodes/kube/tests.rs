//! The launcher's contract with the API server, against a mocked one: the exact calls,
//! the Pod and Secret it asks for, a conflict, the watch to ready, and the deletes.

use std::sync::{Arc, Mutex};

use http::{Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{Value, json};

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

/// How the mocked API server answers.
#[derive(Clone, Copy)]
enum Server {
    /// The Pod is created, and is ready at 10.4.0.7.
    Ready,
    /// A Pod of that name exists already.
    Conflict,
    /// The Pod exists, and its node-host has exited (idle).
    Succeeded,
}

fn pod_status(server: Server) -> Value {
    match server {
        Server::Ready | Server::Conflict => json!({
            "phase": "Running",
            "podIP": "10.4.0.7",
            "conditions": [{"type": "Ready", "status": "True"}],
        }),
        Server::Succeeded => json!({"phase": "Succeeded", "podIP": "10.4.0.7"}),
    }
}

fn pod(server: Server) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": spec::name(&NODE), "namespace": NS, "uid": "uid-1", "resourceVersion": "7"},
        "spec": {"containers": [{"name": "node-host"}]},
        "status": pod_status(server),
    })
}

/// A client whose API server is `server`, and the calls it receives.
fn mocked(server: Server) -> (kube::Client, Arc<Mutex<Vec<Call>>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = calls.clone();
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
            seen.lock().unwrap().push(call.clone());
            let (status, answer) = answer(server, &call);
            respond.send_response(
                Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap(),
            );
        }
    });
    (kube::Client::new(service, NS), calls)
}

fn answer(server: Server, call: &Call) -> (u16, Value) {
    let pods = format!("/api/v1/namespaces/{NS}/pods");
    let secret = format!("/api/v1/namespaces/{NS}/secrets/{}", spec::name(&NODE));
    match (call.method.as_str(), call.path.as_str()) {
        ("PATCH", p) if p == secret => {
            let mut echoed = call.body.clone();
            echoed["metadata"]["uid"] = json!("secret-uid");
            (200, echoed)
        }
        ("POST", p) if p == pods => match server {
            Server::Conflict => (
                409,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "reason": "AlreadyExists", "code": 409,
                       "message": format!("pods \"{}\" already exists", spec::name(&NODE))}),
            ),
            _ => (201, pod(Server::Ready)),
        },
        // The watcher's first list: the Pod as it stands.
        ("GET", p) if p == pods && !call.query.contains("watch=true") => (
            200,
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "8"},
                   "items": [pod(server)]}),
        ),
        ("DELETE", p) if p == format!("{pods}/{}", spec::name(&NODE)) => (200, pod(server)),
        _ => (
            404,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "reason": "NotFound", "code": 404, "message": "not mocked"}),
        ),
    }
}

fn settings() -> KubeSettings {
    KubeSettings {
        namespace: NS.into(),
        image: "registry.example/skylight/node-host:1".into(),
        grpc_port: 19737,
        p2p_port: 9735,
    }
}

fn plan() -> NodePod {
    NodePod {
        node_id: NODE,
        image: settings().image,
        args: vec!["--node-id".into(), hex::encode(NODE)],
        grpc_port: 19737,
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
    let probe = c
        .readiness_probe
        .as_ref()
        .unwrap()
        .tcp_socket
        .as_ref()
        .unwrap();
    assert_eq!(probe.port, IntOrStringPort::Int(19737));
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
    let secret_volume = spec.volumes.unwrap()[1].secret.clone().unwrap();
    assert_eq!(secret_volume.default_mode, Some(0o400));
}

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString as IntOrStringPort;

#[tokio::test]
async fn a_start_stores_the_secret_creates_the_pod_hands_the_secret_to_it_and_waits_until_ready() {
    let (client, calls) = mocked(Server::Ready);
    let launcher = KubeLauncher::new(client, settings());
    let started = launcher
        .start_pod(plan(), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(started.uri(), "https://10.4.0.7:19737");
    assert!(started.alive());
    assert_eq!(started.pid(), None);

    let calls = calls.lock().unwrap().clone();
    let secret = &calls[0];
    assert_eq!(secret.method, "PATCH");
    assert!(
        secret.query.contains("fieldManager=skylight-scheduler"),
        "{}",
        secret.query
    );
    assert!(secret.query.contains("force=true"));
    assert_eq!(secret.body["kind"], "Secret");
    // base64 of "postgres://u:secret@db/s": the URL travels in the Secret only.
    assert_eq!(
        secret.body["data"]["state-database-url"],
        "cG9zdGdyZXM6Ly91OnNlY3JldEBkYi9z"
    );
    let pod = &calls[1];
    assert_eq!(
        (pod.method.as_str(), pod.path.as_str()),
        ("POST", "/api/v1/namespaces/skylight/pods")
    );
    assert_eq!(pod.body["metadata"]["name"], spec::name(&NODE));
    assert_eq!(pod.body["spec"]["containers"][0]["image"], settings().image);
    let owner = &calls[2];
    assert_eq!(owner.method, "PATCH");
    assert_eq!(
        owner.body["metadata"]["ownerReferences"][0],
        json!({"apiVersion": "v1", "kind": "Pod", "name": spec::name(&NODE), "uid": "uid-1"})
    );
    let watch = &calls[3];
    assert_eq!(watch.method, "GET");
    assert!(
        watch
            .query
            .contains(&format!("metadata.name%3D{}", spec::name(&NODE))),
        "the watch is of this Pod alone: {}",
        watch.query
    );
}

#[tokio::test]
async fn a_pod_of_the_same_name_still_there_is_a_retryable_refusal_and_nothing_more_is_asked() {
    let (client, calls) = mocked(Server::Conflict);
    let launcher = KubeLauncher::new(client, settings());
    let err = launcher
        .start_pod(plan(), Duration::from_secs(10))
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(err, Error::Unavailable(ref m) if m.contains("still there")),
        "{err}"
    );
    assert_eq!(
        calls.lock().unwrap().len(),
        2,
        "the Secret, then the Pod refused"
    );
}

#[tokio::test]
async fn stopping_deletes_this_starts_pod_with_the_grace_given() {
    let (client, calls) = mocked(Server::Ready);
    let launcher = KubeLauncher::new(client, settings());
    let started = launcher
        .start_pod(plan(), Duration::from_secs(10))
        .await
        .unwrap();
    started.stop(Duration::from_secs(8)).await;
    let calls = calls.lock().unwrap().clone();
    let delete = calls.last().unwrap();
    assert_eq!(delete.method, "DELETE");
    assert_eq!(delete.body["gracePeriodSeconds"], 8);
    assert_eq!(
        delete.body["preconditions"]["uid"], "uid-1",
        "never a later start's Pod"
    );
}

#[tokio::test]
async fn a_pod_whose_node_host_exited_is_seen_ended_and_deleted_so_its_name_is_free() {
    let (client, calls) = mocked(Server::Succeeded);
    let started = KubeNodeHost {
        pods: Api::namespaced(client, NS),
        name: spec::name(&NODE),
        uid: "uid-1".into(),
        uri: "https://10.4.0.7:19737".into(),
        ended: AtomicBool::new(false),
    };
    assert_eq!(
        started.exited().await,
        Ok(()),
        "an idle exit is a clean stop"
    );
    assert!(!started.alive());
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.last().unwrap().method, "DELETE");
}
