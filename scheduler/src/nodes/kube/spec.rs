//! What the Kubernetes launcher asks the API server for: one bare Pod per running tenant,
//! with a fixed name (so the API server itself refuses a second one while the first
//! exists), and a Secret holding that start's certificates and credentials, mounted into
//! the Pod's node directory file by file and owned by the Pod (deleted with it). The Pod
//! meets Kubernetes' "restricted" Pod security standard.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, GRPCAction, Pod,
    PodSecurityContext, PodSpec, Probe, SeccompProfile, Secret, SecretVolumeSource,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use sha2::{Digest, Sha256};

/// Where the node directory is inside the Pod (an emptyDir: node state is in PostgreSQL).
pub const NODE_DIR: &str = "/var/lib/skylight/node";
/// The user and group node-host runs as in its Pod (distroless images' "nonroot").
pub const NODE_USER: i64 = 65532;
/// The label every node-host Pod and Secret carries (what an operator, or a reaper, lists).
pub const APP_LABEL: (&str, &str) = ("app.kubernetes.io/name", "skylight-node-host");
/// The label naming the tenant (a hash of its node id: label values are at most 63
/// characters, and a node id is 66).
pub const NODE_LABEL: &str = "skylight.dev/node";
/// The annotation holding the tenant's node id whole.
pub const NODE_ID_ANNOTATION: &str = "skylight.dev/node-id";

/// The Pod's and the Secret's name for a tenant: fixed, so one tenant has one at a time.
pub fn name(node_id: &[u8; 33]) -> String {
    format!("sky-node-{}", &hex::encode(Sha256::digest(node_id))[..20])
}

/// One start of a tenant's node-host.
pub struct NodePod {
    /// The tenant.
    pub node_id: [u8; 33],
    /// The node-host image.
    pub image: String,
    /// node-host's command line (nothing secret on it).
    pub args: Vec<String>,
    /// The port its gRPC listens on.
    pub grpc_port: u16,
    /// The port of its plaintext health service.
    pub health_port: u16,
    /// The port it listens on for Lightning peers.
    pub p2p_port: u16,
    /// The files of its node directory this start brings: name → contents, every one
    /// secret or not, all in the Secret.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl NodePod {
    fn meta(&self) -> ObjectMeta {
        let labels = BTreeMap::from([
            (APP_LABEL.0.to_string(), APP_LABEL.1.to_string()),
            (
                NODE_LABEL.to_string(),
                name(&self.node_id)["sky-node-".len()..].to_string(),
            ),
        ]);
        ObjectMeta {
            name: Some(name(&self.node_id)),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                NODE_ID_ANNOTATION.to_string(),
                hex::encode(self.node_id),
            )])),
            ..Default::default()
        }
    }

    /// The Secret: this start's certificates and credentials, owned by its Pod (of uid
    /// `pod_uid`), so that deleting the Pod deletes it.
    pub fn secret(&self, pod_uid: &str) -> Secret {
        Secret {
            metadata: ObjectMeta {
                owner_references: Some(vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "Pod".into(),
                    name: name(&self.node_id),
                    uid: pod_uid.into(),
                    ..Default::default()
                }]),
                ..self.meta()
            },
            type_: Some("Opaque".into()),
            data: Some(
                self.files
                    .iter()
                    .map(|(k, v)| (k.clone(), ByteString(v.clone())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    /// The Pod: node-host, never restarted by the kubelet (the scheduler starts it again
    /// when it is next needed), ready once its gRPC port accepts connections.
    pub fn pod(&self) -> Pod {
        let name = name(&self.node_id);
        // Each file of the Secret in the (otherwise empty, writable) node directory, read
        // only, readable by node-host's group alone.
        let mut mounts = vec![VolumeMount {
            name: "node-dir".into(),
            mount_path: NODE_DIR.into(),
            ..Default::default()
        }];
        mounts.extend(self.files.keys().map(|file| VolumeMount {
            name: "start".into(),
            mount_path: format!("{NODE_DIR}/{file}"),
            sub_path: Some(file.clone()),
            read_only: Some(true),
            ..Default::default()
        }));
        let container = Container {
            name: "node-host".into(),
            image: Some(self.image.clone()),
            args: Some(self.args.clone()),
            ports: Some(vec![
                ContainerPort {
                    name: Some("grpc".into()),
                    container_port: self.grpc_port.into(),
                    ..Default::default()
                },
                ContainerPort {
                    name: Some("health".into()),
                    container_port: self.health_port.into(),
                    ..Default::default()
                },
                ContainerPort {
                    name: Some("lightning".into()),
                    container_port: self.p2p_port.into(),
                    ..Default::default()
                },
            ]),
            // node-host's gRPC is mutual TLS only, and the kubelet's gRPC probe takes no
            // certificate: it asks node-host's plaintext health port, SERVING once the
            // node server serves (its own port accepts connections before that).
            readiness_probe: Some(Probe {
                grpc: Some(GRPCAction {
                    port: self.health_port.into(),
                    service: None,
                }),
                period_seconds: Some(1),
                ..Default::default()
            }),
            volume_mounts: Some(mounts),
            // Kubernetes' "restricted" Pod security standard.
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        Pod {
            metadata: self.meta(),
            spec: Some(PodSpec {
                restart_policy: Some("Never".into()),
                // A fixed unprivileged user, whatever the image says (runAsNonRoot alone
                // refuses an image without a numeric USER), in the group that owns the
                // Secret's files.
                security_context: Some(PodSecurityContext {
                    run_as_non_root: Some(true),
                    run_as_user: Some(NODE_USER),
                    run_as_group: Some(NODE_USER),
                    fs_group: Some(NODE_USER),
                    seccomp_profile: Some(SeccompProfile {
                        type_: "RuntimeDefault".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                automount_service_account_token: Some(false),
                containers: vec![container],
                volumes: Some(vec![
                    Volume {
                        name: "node-dir".into(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Default::default()
                    },
                    Volume {
                        name: "start".into(),
                        secret: Some(SecretVolumeSource {
                            secret_name: Some(name),
                            // Root's and the Pod's group's, which node-host runs in.
                            default_mode: Some(0o440),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}
