//! One node-host per tenant, through the real `scheduler` and `node-host` binaries:
//! Schedule, GetNodeInfo, tenant isolation at the node, idle stop, crash and restart.

use std::time::{Duration, Instant};

use skylight_client::keys::NodeKeys;
use skylight_client::tls::{self, TlsIdentity};
use skylight_proto::greenlight::Empty;
use skylight_proto::greenlight::node_client::NodeClient;
use skylight_proto::scheduler::scheduler_client::SchedulerClient;
use skylight_proto::scheduler::{NodeInfoRequest, NodeInfoResponse, ScheduleRequest};
use skylight_test_support::{Scheduler, alive, node_pid, register_invited};
use tonic::transport::Channel;

fn pid_of(s: &Scheduler, keys: &NodeKeys) -> u32 {
    node_pid(s, &hex::encode(keys.node_id_bytes())).expect("a pid file")
}

async fn schedule(c: &mut SchedulerClient<Channel>) -> NodeInfoResponse {
    c.schedule(ScheduleRequest::default())
        .await
        .expect("Schedule")
        .into_inner()
}

async fn info(c: &mut SchedulerClient<Channel>) -> NodeInfoResponse {
    c.get_node_info(NodeInfoRequest {
        node_id: vec![],
        wait: false,
    })
    .await
    .expect("GetNodeInfo")
    .into_inner()
}

/// Polls `cond` until it holds; fails after a generous bound (this waits, it does not time).
async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond().await {
        assert!(Instant::now() < deadline, "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client of a tenant's node, presenting `id`.
async fn node_client(uri: &str, id: &TlsIdentity) -> anyhow::Result<NodeClient<Channel>> {
    Ok(NodeClient::new(tls::channel(uri, id).await?))
}

#[tokio::test]
async fn schedule_starts_one_node_host_per_tenant_and_only_its_devices_get_in() {
    let s = Scheduler::start(&[]).unwrap();
    let (a_keys, a) = register_invited(&s).await;
    let (b_keys, b) = register_invited(&s).await;
    let mut ca = tls::scheduler(&s.uri, &a).await.unwrap();
    let mut cb = tls::scheduler(&s.uri, &b).await.unwrap();

    let first = schedule(&mut ca).await;
    assert!(first.grpc_uri.starts_with("https://localhost:"));
    assert_eq!(first.node_id, a_keys.node_id_bytes().to_vec());
    let pid = pid_of(&s, &a_keys);
    assert!(alive(pid));
    // Scheduling again reuses the running node; GetNodeInfo agrees.
    assert_eq!(schedule(&mut ca).await, first);
    assert_eq!(info(&mut ca).await, first);
    assert_eq!(pid_of(&s, &a_keys), pid);
    // B's node is another process.
    let b_node = schedule(&mut cb).await;
    assert_ne!(b_node.grpc_uri, first.grpc_uri);
    assert_ne!(pid_of(&s, &b_keys), pid);

    // A's device attaches to A's node as its signer.
    let mut node = node_client(&first.grpc_uri, &a).await.unwrap();
    node.stream_hsm_requests(Empty {})
        .await
        .expect("A's signer attaches");
    // B's device is refused by A's node: at the handshake or at the call.
    let refused = match node_client(&first.grpc_uri, &b).await {
        Err(_) => true,
        Ok(mut n) => n.stream_hsm_requests(Empty {}).await.is_err(),
    };
    assert!(refused, "tenant B's device must not reach tenant A's node");
}

#[tokio::test]
async fn get_node_info_with_wait_returns_once_the_node_is_scheduled() {
    let s = Scheduler::start(&[]).unwrap();
    let (_, a) = register_invited(&s).await;
    let mut c = tls::scheduler(&s.uri, &a).await.unwrap();
    assert_eq!(info(&mut c).await.grpc_uri, "", "not running: an empty URI");

    let mut waiter = tls::scheduler(&s.uri, &a).await.unwrap();
    let waiting = tokio::spawn(async move {
        waiter
            .get_node_info(NodeInfoRequest {
                node_id: vec![],
                wait: true,
            })
            .await
            .unwrap()
            .into_inner()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the long poll waits for the node");
    let scheduled = schedule(&mut c).await;
    assert_eq!(waiting.await.unwrap(), scheduled);
}

#[tokio::test]
async fn an_idle_node_host_stops_and_the_next_schedule_brings_it_back() {
    let s = Scheduler::start(&["--node-idle-timeout", "2"]).unwrap();
    let (keys, a) = register_invited(&s).await;
    let mut c = tls::scheduler(&s.uri, &a).await.unwrap();
    let first = schedule(&mut c).await;
    let pid = pid_of(&s, &keys);

    // An attached signer keeps it running past the idle time.
    let mut node = node_client(&first.grpc_uri, &a).await.unwrap();
    let stream = node.stream_hsm_requests(Empty {}).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(alive(pid), "a node with its signer attached is not idle");
    drop(stream);
    drop(node);

    eventually("idle node-host stops", async || !alive(pid)).await;
    eventually("its URI is withdrawn", async || {
        info(&mut c).await.grpc_uri.is_empty()
    })
    .await;

    let again = schedule(&mut c).await;
    assert_ne!(again.session_id, first.session_id);
    assert!(alive(pid_of(&s, &keys)));
}

#[tokio::test]
async fn a_node_host_killed_with_sigkill_is_started_again_on_the_next_schedule() {
    let s = Scheduler::start(&[]).unwrap();
    let (keys, a) = register_invited(&s).await;
    let mut c = tls::scheduler(&s.uri, &a).await.unwrap();
    let first = schedule(&mut c).await;
    let pid = pid_of(&s, &keys);
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    eventually("the dead node's URI is withdrawn", async || {
        info(&mut c).await.grpc_uri.is_empty()
    })
    .await;
    let again = schedule(&mut c).await;
    assert_ne!(again.session_id, first.session_id);
    let new_pid = pid_of(&s, &keys);
    assert_ne!(new_pid, pid);
    assert!(alive(new_pid));
}

#[tokio::test]
async fn killing_and_restarting_the_scheduler_leaves_no_orphan_node_host() {
    let mut s = Scheduler::start(&["--shutdown-grace", "1"]).unwrap();
    let (keys, a) = register_invited(&s).await;
    let mut c = tls::scheduler(&s.uri, &a).await.unwrap();
    schedule(&mut c).await;
    let pid = pid_of(&s, &keys);

    s.kill_and_restart().unwrap();
    assert!(
        !alive(pid),
        "the restarted scheduler stopped the node-host its predecessor left"
    );
    let mut c = tls::scheduler(&s.uri, &a).await.unwrap();
    assert_eq!(info(&mut c).await.grpc_uri, "");
    schedule(&mut c).await;
    let pid = pid_of(&s, &keys);
    assert!(alive(pid));

    // A clean stop takes its node-hosts with it.
    s.stop().unwrap();
    assert!(
        !alive(pid),
        "a stopped scheduler leaves no node-host running"
    );
}

#[tokio::test]
async fn a_signer_stays_attached_to_the_scheduler_and_nobody_cannot_attach() {
    let s = Scheduler::start(&[]).unwrap();
    let (_, a) = register_invited(&s).await;
    let mut c = tls::scheduler(&s.uri, &a).await.unwrap();
    let (_answers, outbound) =
        tokio::sync::mpsc::channel::<skylight_proto::scheduler::SignerResponse>(1);
    let mut stream = c
        .signer_requests_stream(tokio_stream::wrappers::ReceiverStream::new(outbound))
        .await
        .expect("a device attaches")
        .into_inner();
    // Nothing to sign yet, and the stream neither ends nor fails.
    let waited = tokio::time::timeout(Duration::from_secs(2), stream.message()).await;
    assert!(waited.is_err(), "the stream stays open: {waited:?}");

    let mut nobody = tls::scheduler(&s.uri, &s.nobody()).await.unwrap();
    let (_tx, rx) = tokio::sync::mpsc::channel::<skylight_proto::scheduler::SignerResponse>(1);
    let st = nobody
        .signer_requests_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap_err();
    assert_eq!(st.code(), tonic::Code::PermissionDenied);
}
