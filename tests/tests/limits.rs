//! Limits that hold under abuse, on the real scheduler: a register flood from the public
//! nobody identity is cut off while tenants carry on; caps on tenants, running node-hosts,
//! signer streams, connections and long-poll waits each refuse with a status that says
//! what to do.

use skylight_client::identity;
use skylight_client::tls;
use skylight_proto::scheduler::{NodeInfoRequest, ScheduleRequest, SignerResponse};
use skylight_test_support::{
    Scheduler, code_of, eventually, new_keys, node_pid, register_new_tenant, status_of,
};
use tonic::Code;

#[tokio::test]
async fn a_register_flood_from_the_nobody_identity_is_cut_off_while_a_tenant_carries_on() {
    // The default limits.
    let s = Scheduler::start(&["--require-invite", "false"]).unwrap();
    let nobody = s.nobody();
    let tenant = register_new_tenant(&s.uri, &nobody).await;
    let node_id = tenant.keys.node_id_bytes().to_vec();

    let (mut registered, mut refused) = (0, None);
    for _ in 0..100 {
        match identity::register(&s.uri, &nobody, &new_keys(), "regtest", None).await {
            Ok(_) => registered += 1,
            Err(e) => {
                refused = Some(status_of(&e).expect("a gRPC refusal").clone());
                break;
            }
        }
    }
    println!("{registered} registrations from one address before the refusal");
    let st = refused.expect("a flood of registrations is bounded");
    assert_eq!(st.code(), Code::ResourceExhausted, "{st:?}");
    assert!(
        st.message().contains("too many calls from this address")
            && st.message().contains("try again in"),
        "{st:?}"
    );
    // 120 calls a minute, 30 at once, two calls a registration (and one was the tenant's).
    assert!(registered < 20, "{registered} registrations went through");

    // The tenant registered before is counted apart: its device's calls go on.
    let mut c = tls::scheduler(&s.uri, &tenant.device).await.unwrap();
    let info = c
        .schedule(ScheduleRequest { node_id })
        .await
        .expect("the tenant is still served")
        .into_inner();
    assert!(info.grpc_uri.starts_with("https://localhost:"), "{info:?}");
    let refusals = s
        .metric("skylight_refused_by_limit_total{limit=\"anonymous_calls\"}")
        .unwrap();
    assert!(refusals.is_some_and(|n| n >= 1.0), "{refusals:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_running_node_and_tenant_caps_hold_and_free_up() {
    let s = Scheduler::start(&[
        "--require-invite",
        "false",
        "--max-running-nodes",
        "1",
        "--max-tenants",
        "2",
    ])
    .unwrap();
    let nobody = s.nobody();
    let a = register_new_tenant(&s.uri, &nobody).await;
    let b = register_new_tenant(&s.uri, &nobody).await;
    let err = identity::register(&s.uri, &nobody, &new_keys(), "regtest", None)
        .await
        .unwrap_err();
    let st = status_of(&err).unwrap();
    assert_eq!(st.code(), Code::ResourceExhausted, "{st:?}");
    assert!(
        st.message()
            .contains("as many tenants as its operator allows (2)")
    );

    let schedule = |who: &skylight_test_support::NewTenant| {
        let (uri, device, id) = (
            s.uri.clone(),
            who.device.clone(),
            who.keys.node_id_bytes().to_vec(),
        );
        async move {
            let mut c = tls::scheduler(&uri, &device).await.unwrap();
            c.schedule(ScheduleRequest { node_id: id }).await
        }
    };
    schedule(&a).await.expect("A's node starts");
    let st = schedule(&b).await.unwrap_err();
    assert_eq!(st.code(), Code::ResourceExhausted, "{st:?}");
    assert!(
        st.message()
            .contains("runs as many nodes as its operator allows (1)")
    );
    // A's node still answers: the cap refuses new starts, it stops nothing.
    schedule(&a).await.expect("A's running node is handed out");

    // Once A's node-host is gone, B's place is free.
    let a_hex = hex::encode(a.keys.node_id_bytes());
    let pid = node_pid(&s, &a_hex).expect("A's node-host runs");
    let killed = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let rt = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| {
        eventually("B's node starts once A's stopped", || {
            rt.block_on(schedule(&b)).is_ok()
        })
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn signer_streams_waits_and_connections_are_bounded() {
    let s = Scheduler::start(&[
        "--require-invite",
        "false",
        "--max-signer-streams-per-tenant",
        "1",
        "--node-info-max-wait",
        "1",
        "--max-connections",
        "3",
    ])
    .unwrap();
    let t = register_new_tenant(&s.uri, &s.nobody()).await;
    let node_id = t.keys.node_id_bytes().to_vec();
    let mut c = tls::scheduler(&s.uri, &t.device).await.unwrap();

    // One signer stream is taken; a second of the same tenant is refused.
    let (_keep, answers) = tokio::sync::mpsc::channel::<SignerResponse>(1);
    let first = c
        .signer_requests_stream(tokio_stream::wrappers::ReceiverStream::new(answers))
        .await
        .expect("the first signer attaches");
    let (_keep2, answers2) = tokio::sync::mpsc::channel::<SignerResponse>(1);
    let st = c
        .signer_requests_stream(tokio_stream::wrappers::ReceiverStream::new(answers2))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::ResourceExhausted, "{st:?}");
    assert!(st.message().contains("signers attached"), "{st:?}");
    drop(first);

    // A long poll for a node nobody starts ends after the wait, saying it is not running.
    let info = c
        .get_node_info(NodeInfoRequest {
            node_id: node_id.clone(),
            wait: true,
        })
        .await
        .expect("the wait ends with an answer")
        .into_inner();
    assert_eq!(info.grpc_uri, "", "{info:?}");

    // Three connections are open (this one and two more); a fourth is closed at once.
    // (The registration's connection may take the server a moment to see closed.)
    let mut more = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while more.len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no room within the cap"
        );
        if let Ok(mut extra) = tls::scheduler(&s.uri, &t.device).await
            && extra
                .get_node_info(NodeInfoRequest {
                    node_id: node_id.clone(),
                    wait: false,
                })
                .await
                .is_ok()
        {
            more.push(extra);
        } else {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    let refused = match tls::scheduler(&s.uri, &t.device).await {
        Err(_) => true,
        Ok(mut fourth) => {
            code_of(
                fourth
                    .get_node_info(NodeInfoRequest {
                        node_id: node_id.clone(),
                        wait: false,
                    })
                    .await,
            ) == Code::Unavailable
        }
    };
    assert!(refused, "a connection past the cap was served");
    // One closed, one more may open.
    more.pop();
    let rt = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| {
        eventually("a connection is served once one closed", || {
            rt.block_on(async {
                match tls::scheduler(&s.uri, &t.device).await {
                    Ok(mut c) => c
                        .get_node_info(NodeInfoRequest {
                            node_id: node_id.clone(),
                            wait: false,
                        })
                        .await
                        .is_ok(),
                    Err(_) => false,
                }
            })
        })
    });
}
