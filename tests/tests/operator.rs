//! The operator's view of one tenant (`scheduler tenant show`) and stopping its node-host
//! (`scheduler node stop`), through the real binaries, with the scheduler running and not;
//! and the admin socket refusing a caller without the token in the data directory.

use skylight_proto::admin::{ListTenantsRequest, admin_client::AdminClient};
use skylight_test_support::{Scheduler, SignerCli, alive, node_pid};

#[tokio::test]
async fn the_admin_socket_refuses_a_call_without_the_data_directorys_token() {
    let s = Scheduler::start(&[]).unwrap();
    let channel = skylight_client::local::channel(&s.dir.join("admin.sock"), None)
        .await
        .unwrap();
    let st = AdminClient::new(channel)
        .list_tenants(ListTenantsRequest {})
        .await
        .unwrap_err();
    assert_eq!(st.code(), tonic::Code::Unauthenticated, "{st:?}");
    assert!(st.message().contains("admin.token"), "{st:?}");
    // The operator's commands carry it.
    let out = s.command(&["tenant", "list"]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(s.dir.join("admin.token"))
            .unwrap()
            .permissions(),
    ) & 0o777;
    assert_eq!(mode, 0o600);
}

fn command(s: &Scheduler, args: &[&str]) -> (bool, String, String) {
    let out = s.command(args).unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tenant_show_follows_the_node_host_and_node_stop_stops_it_until_the_next_schedule() {
    let mut s = Scheduler::start(&[]).unwrap();
    let cli = SignerCli::registered(&s).unwrap();
    let id = cli.node_id();

    let (ok, shown, err) = command(&s, &["tenant", "show", &id]);
    assert!(ok, "{err}");
    assert!(shown.contains(&format!("node id       {id}")), "{shown}");
    assert!(shown.contains("state         active"), "{shown}");
    assert!(shown.contains("node-host     not running"), "{shown}");
    assert!(shown.contains("last schedule none"), "{shown}");
    assert!(
        shown.contains("devices       1\n  default (issued "),
        "{shown}"
    );

    assert!(cli.run(&["schedule"]).unwrap().ok);
    let pid = node_pid(&s, &id).expect("its node-host runs");
    let (_, shown, _) = command(&s, &["tenant", "show", &id]);
    assert!(
        shown.contains(&format!(
            "node-host     running: pid {pid}, https://localhost:"
        )),
        "{shown}"
    );
    assert!(
        shown.contains("last schedule ") && !shown.contains("last schedule none"),
        "{shown}"
    );

    let (ok, said, err) = command(&s, &["node", "stop", &id]);
    assert!(ok, "{err}");
    assert!(said.contains("stopped"), "{said}");
    assert!(!alive(pid), "node-host {pid} still runs");
    let (_, shown, _) = command(&s, &["tenant", "show", &id]);
    assert!(shown.contains("node-host     not running"), "{shown}");
    let (_, said, _) = command(&s, &["node", "stop", &id]);
    assert!(said.contains("was not running"), "{said}");
    // The next Schedule brings it back.
    assert!(cli.run(&["schedule"]).unwrap().ok);
    assert!(node_pid(&s, &id).is_some_and(|p| p != pid && alive(p)));

    // A node id that is no tenant's is said to be so.
    let stranger = "02".to_string() + &"11".repeat(32);
    let (ok, _, err) = command(&s, &["tenant", "show", &stranger]);
    assert!(!ok && err.contains("not registered here"), "{err}");
    let (ok, _, err) = command(&s, &["node", "stop", "not-a-node"]);
    assert!(!ok && err.contains("not a node id"), "{err}");

    // With the scheduler stopped, the store still answers.
    s.stop().unwrap();
    let (ok, shown, err) = command(&s, &["tenant", "show", &id]);
    assert!(ok, "{err}");
    assert!(shown.contains("node-host     not running"), "{shown}");
    let (ok, said, _) = command(&s, &["node", "stop", &id]);
    assert!(
        ok && said.contains("the scheduler is not running"),
        "{said}"
    );
}
