//! Who may reach what, through the real `scheduler` binary: a tenant's device acts only for
//! its own tenant, and the nobody identity reaches only the calls that register, recover
//! and report.

use skylight_client::tls;
use skylight_proto::scheduler::{
    ListInviteCodesRequest, NodeInfoRequest, ScheduleRequest, SignerRejection, UpgradeRequest,
    debug_client::DebugClient,
};
use skylight_test_support::{Scheduler, code_of, register_invited};
use tonic::Code;

#[tokio::test]
async fn a_device_of_one_tenant_cannot_act_for_another() {
    let s = Scheduler::start(&["--invites-per-tenant", "3"]).unwrap();
    let (a_keys, a) = register_invited(&s).await;
    let (b_keys, _b) = register_invited(&s).await;
    let a_id = a_keys.node_id_bytes().to_vec();
    let b_id = b_keys.node_id_bytes().to_vec();
    let mut c = tls::scheduler(&s.uri, &a).await.unwrap();

    let st = c
        .schedule(ScheduleRequest {
            node_id: b_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::PermissionDenied);
    assert!(
        st.message().contains(&hex::encode(&b_id)),
        "{}",
        st.message()
    );
    assert_eq!(
        code_of(
            c.get_node_info(NodeInfoRequest {
                node_id: b_id.clone(),
                wait: false
            })
            .await
        ),
        Code::PermissionDenied
    );
    let mut debug = DebugClient::new(tls::channel(&s.uri, &a).await.unwrap());
    assert_eq!(
        code_of(
            debug
                .report_signer_rejection(SignerRejection {
                    node_id: b_id.clone(),
                    ..Default::default()
                })
                .await
        ),
        Code::PermissionDenied
    );

    // Its own node passes the check and is scheduled.
    let info = c
        .schedule(ScheduleRequest {
            node_id: a_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(info.grpc_uri.starts_with("https://localhost:"), "{info:?}");
    assert_eq!(info.node_id, a_id);

    // Each sees only its own invite codes.
    let mine = c
        .list_invite_codes(ListInviteCodesRequest {})
        .await
        .unwrap()
        .into_inner();
    let out = s.command(&["invite", "list"]).unwrap();
    let listing = String::from_utf8(out.stdout).unwrap();
    assert_eq!(mine.invite_code_list.len(), 3);
    for code in &mine.invite_code_list {
        let line = listing.lines().find(|l| l.starts_with(&code.code)).unwrap();
        assert!(line.contains(&hex::encode(&a_id)), "{line}");
    }
}

#[tokio::test]
async fn the_nobody_identity_reaches_only_the_open_calls() {
    let s = Scheduler::start(&[]).unwrap();
    let (keys, _) = register_invited(&s).await;
    let nobody = s.nobody();
    let mut c = tls::scheduler(&s.uri, &nobody).await.unwrap();
    let id = keys.node_id_bytes().to_vec();

    assert_eq!(
        code_of(
            c.schedule(ScheduleRequest {
                node_id: id.clone()
            })
            .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code_of(c.list_invite_codes(ListInviteCodesRequest {}).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code_of(c.maybe_upgrade(UpgradeRequest::default()).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code_of(
            c.get_node_info(NodeInfoRequest {
                node_id: id.clone(),
                wait: false
            })
            .await
        ),
        Code::PermissionDenied
    );

    // Signers report rejections with the nobody identity; a malformed node id is refused.
    let mut debug = DebugClient::new(tls::channel(&s.uri, &nobody).await.unwrap());
    assert_eq!(
        code_of(
            debug
                .report_signer_rejection(SignerRejection {
                    node_id: vec![9; 5],
                    ..Default::default()
                })
                .await
        ),
        Code::InvalidArgument
    );
    let report = SignerRejection {
        msg: "policy: feerate too high".into(),
        node_id: id,
        git_version: "test".into(),
        request: None,
    };
    debug
        .report_signer_rejection(report.clone())
        .await
        .expect("report accepted");
    // The nobody identity is anyone's: a flood from one address is cut off, and told so.
    let mut exhausted = None;
    for _ in 0..100 {
        if let Err(st) = debug.report_signer_rejection(report.clone()).await {
            exhausted = Some(st);
            break;
        }
    }
    let st = exhausted.expect("a flood of reports is bounded");
    assert_eq!(st.code(), Code::ResourceExhausted, "{st:?}");
    assert!(st.message().contains("too many reports"), "{st:?}");
}
