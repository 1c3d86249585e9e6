//! gRPC's conventions that operators' tools rely on: `grpc.health.v1` (Kubernetes-style
//! probes, `grpc_health_probe`) and server reflection (`grpcurl list`, `describe`), for a
//! server that serves the services named.

use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;
use tonic_reflection::server::v1::{ServerReflection, ServerReflectionServer};

/// The health service's name.
pub const HEALTH: &str = "grpc.health.v1.Health";
/// The reflection service's name.
pub const REFLECTION: &str = "grpc.reflection.v1.ServerReflection";

/// A health service reporting `services` (and the server as a whole, `""`) as serving,
/// the reporter that changes that, and a reflection service that lists `services`, health
/// and itself, and describes every message they use.
pub async fn for_services(
    services: &[&str],
) -> (
    HealthReporter,
    HealthServer<impl Health>,
    ServerReflectionServer<impl ServerReflection>,
) {
    let (reporter, health) = tonic_health::server::health_reporter();
    for name in services {
        reporter
            .set_service_status(*name, tonic_health::ServingStatus::Serving)
            .await;
    }
    let mut reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(HEALTH)
        .with_service_name(REFLECTION);
    for name in services {
        reflection = reflection.with_service_name(*name);
    }
    let reflection = reflection
        .build_v1()
        .expect("the descriptors compiled into this crate are valid");
    (reporter, health, reflection)
}
