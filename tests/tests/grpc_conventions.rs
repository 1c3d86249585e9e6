//! gRPC's conventions on the real servers: `grpc.health.v1` answers SERVING and reflection
//! lists what is served — on the scheduler with the nobody identity, on a node-host with
//! the tenant's device (the only identity its TLS lets in) and no signature.

use skylight_client::tls::{self, TlsIdentity};
use skylight_test_support::{Scheduler, SignerCli};
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

async fn status(uri: &str, who: &TlsIdentity, service: &str) -> Result<i32, tonic::Status> {
    let mut c = HealthClient::new(tls::channel(uri, who).await.unwrap());
    c.check(HealthCheckRequest {
        service: service.into(),
    })
    .await
    .map(|r| r.into_inner().status)
}

/// The services reflection lists, sorted.
async fn listed(uri: &str, who: &TlsIdentity) -> Vec<String> {
    let mut c = ServerReflectionClient::new(tls::channel(uri, who).await.unwrap());
    let ask = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = c
        .server_reflection_info(tokio_stream::iter([ask]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    names
}

#[test]
fn health_and_reflection_answer_on_the_scheduler_and_on_a_node_host() {
    let s = Scheduler::start(&[]).unwrap();
    let cli = SignerCli::registered(&s).unwrap();
    let scheduled = cli.run(&["schedule"]).unwrap();
    assert!(scheduled.ok, "{}", scheduled.stderr);
    let node_uri = scheduled.stdout.trim().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let nobody = s.nobody();
        let serving = ServingStatus::Serving as i32;
        assert_eq!(status(&s.uri, &nobody, "").await.unwrap(), serving);
        assert_eq!(
            status(&s.uri, &nobody, "scheduler.Scheduler")
                .await
                .unwrap(),
            serving
        );
        let unknown = status(&s.uri, &nobody, "no.Such").await.unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound);
        assert_eq!(
            listed(&s.uri, &nobody).await,
            [
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "scheduler.Debug",
                "scheduler.Pairing",
                "scheduler.Scheduler",
                "skylight.devices.Devices",
            ],
            "the operator's own services are not on the tenants' port"
        );

        let device = cli.identity();
        assert_eq!(status(&node_uri, &device, "").await.unwrap(), serving);
        assert_eq!(
            status(&node_uri, &device, "cln.Node").await.unwrap(),
            serving
        );
        assert_eq!(
            listed(&node_uri, &device).await,
            [
                "cln.Node",
                "greenlight.Node",
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
            ]
        );
    });
}
