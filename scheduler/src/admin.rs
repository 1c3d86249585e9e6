//! The operator's service on the data directory's unix socket.
//!
//! redb holds its database file exclusively, so while the scheduler runs, operator commands
//! (`scheduler invite create`, …) reach the store through this socket instead. The socket is
//! 0600 in a 0700 directory: whoever can use it could read the CA keys anyway.
//!
//! Every call also carries the token in `admin.token` (0600, new at every start). File
//! modes do not keep out node-hosts, which run as the same user; what keeps them out is
//! that they are confined (Landlock) away from the data directory's files, and so cannot
//! read the token, while a socket's path is not a file access to Landlock.

use skylight_proto::admin::admin_client::AdminClient;
use skylight_proto::admin::{self as pb, admin_server};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::state::blocking;
use crate::store::Store;
use crate::store::records::InviteRecord;

/// The metadata key the admin token travels in.
pub const TOKEN_KEY: &str = "x-skylight-admin-token";

/// The operator's side: puts the token on every call.
#[derive(Clone)]
pub struct WithToken(tonic::metadata::AsciiMetadataValue);

impl tonic::service::Interceptor for WithToken {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        req.metadata_mut().insert(TOKEN_KEY, self.0.clone());
        Ok(req)
    }
}

/// The server's side: refuses a call without the token.
pub fn check_token(token: String) -> impl tonic::service::Interceptor + Clone {
    move |req: Request<()>| {
        let given = req
            .metadata()
            .get(TOKEN_KEY)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if crate::auth::same_secret(given, token.as_bytes()) {
            Ok(req)
        } else {
            Err(Status::unauthenticated(
                "the admin socket takes calls from the operator's `scheduler` commands, which \
                 read admin.token from the data directory",
            ))
        }
    }
}

/// A client of the running scheduler's admin socket.
pub type Client = AdminClient<tonic::codegen::InterceptedService<Channel, WithToken>>;

/// The most codes one call mints.
pub const MAX_INVITES_PER_CALL: u32 = 10_000;

/// `skylight.admin.Admin` on the running scheduler: its store and its node-hosts.
pub struct AdminService(pub std::sync::Arc<crate::state::State>);

fn node_id_of(hex_id: &str) -> Result<[u8; 33], Error> {
    skylight_certs::parse_node_id(hex_id.trim()).ok_or_else(|| {
        Error::InvalidArgument(format!("{hex_id:?} is not a node id (66 hex digits)"))
    })
}

#[tonic::async_trait]
impl admin_server::Admin for AdminService {
    async fn create_invite_codes(
        &self,
        req: Request<pb::CreateInviteCodesRequest>,
    ) -> Result<Response<pb::CreateInviteCodesResponse>, Status> {
        let count = req.into_inner().count;
        if count == 0 || count > MAX_INVITES_PER_CALL {
            return Err(Error::InvalidArgument(format!(
                "count must be between 1 and {MAX_INVITES_PER_CALL}"
            ))
            .into());
        }
        let store = self.0.store.clone();
        let codes = blocking(move || store.create_invites(count)).await?;
        tracing::info!(count, "operator minted invite codes");
        Ok(Response::new(pb::CreateInviteCodesResponse { codes }))
    }

    async fn list_invite_codes(
        &self,
        _req: Request<pb::ListInviteCodesRequest>,
    ) -> Result<Response<pb::ListInviteCodesResponse>, Status> {
        let store = self.0.store.clone();
        let codes = blocking(move || store.invites()).await?;
        Ok(Response::new(pb::ListInviteCodesResponse {
            codes: codes.into_iter().map(invite_info).collect(),
        }))
    }

    async fn list_tenants(
        &self,
        _req: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsResponse>, Status> {
        let store = self.0.store.clone();
        let tenants = blocking(move || store.tenants()).await?;
        Ok(Response::new(pb::ListTenantsResponse {
            tenants: tenants.into_iter().map(tenant_info).collect(),
        }))
    }

    async fn list_devices(
        &self,
        req: Request<pb::TenantDevicesRequest>,
    ) -> Result<Response<skylight_proto::devices::ListDevicesResponse>, Status> {
        let node_id = node_id_of(&req.into_inner().node_id)?;
        let store = self.0.store.clone();
        let devices = blocking(move || store.devices(&node_id)).await?;
        Ok(Response::new(
            skylight_proto::devices::ListDevicesResponse {
                devices: devices
                    .into_iter()
                    .map(|(n, r)| crate::api::list_devices::device_info(n, r))
                    .collect(),
            },
        ))
    }

    async fn list_failed_deliveries(
        &self,
        _req: Request<pb::ListFailedDeliveriesRequest>,
    ) -> Result<Response<pb::ListFailedDeliveriesResponse>, Status> {
        let store = self.0.store.clone();
        let failed = blocking(move || store.failed_deliveries()).await?;
        Ok(Response::new(pb::ListFailedDeliveriesResponse {
            deliveries: failed.into_iter().map(failed_delivery).collect(),
        }))
    }

    async fn list_pending_deliveries(
        &self,
        _req: Request<pb::ListPendingDeliveriesRequest>,
    ) -> Result<Response<pb::ListPendingDeliveriesResponse>, Status> {
        let store = self.0.store.clone();
        let pending = blocking(move || store.pending_deliveries(MAX_LISTED_PENDING)).await?;
        Ok(Response::new(pb::ListPendingDeliveriesResponse {
            deliveries: pending.into_iter().map(pending_delivery).collect(),
        }))
    }

    async fn show_tenant(
        &self,
        req: Request<pb::TenantDevicesRequest>,
    ) -> Result<Response<pb::TenantDetail>, Status> {
        let node_id = node_id_of(&req.into_inner().node_id)?;
        let mut detail = tenant_detail(&self.0.store, node_id).await?;
        let nodes = &self.0.nodes;
        if let Some((r, alive)) = nodes.show(&node_id) {
            detail.running = alive;
            detail.pid = r.pid.unwrap_or(0);
            detail.grpc_uri = r.uri;
            detail.started_at = r.session_id / 1000;
        }
        detail.last_scheduled_at = nodes.last_scheduled(&node_id).unwrap_or(0);
        Ok(Response::new(detail))
    }

    async fn stop_node(
        &self,
        req: Request<pb::TenantDevicesRequest>,
    ) -> Result<Response<pb::StopNodeResponse>, Status> {
        let hex_id = req.into_inner().node_id;
        let node_id = node_id_of(&hex_id)?;
        let store = self.0.store.clone();
        blocking(move || registered(&store, node_id)).await?;
        let was_running = self.0.nodes.stop(&node_id).await?;
        tracing::info!(node_id = %hex_id, was_running, "operator stopped a node-host");
        Ok(Response::new(pb::StopNodeResponse { was_running }))
    }

    async fn revoke_device(
        &self,
        req: Request<pb::RevokeTenantDeviceRequest>,
    ) -> Result<Response<skylight_proto::devices::DeviceInfo>, Status> {
        let req = req.into_inner();
        let node_id = node_id_of(&req.node_id)?;
        let revocations = self.0.revocations.clone();
        let name = req.name.clone();
        let record = blocking(move || revocations.revoke(&node_id, &name)).await?;
        tracing::info!(node_id = %req.node_id, device = %req.name, "operator revoked a device");
        Ok(Response::new(crate::api::list_devices::device_info(
            req.name, record,
        )))
    }
}

/// The most pending deliveries one listing shows.
pub const MAX_LISTED_PENDING: usize = 10_000;

/// The wire form of a delivery still to make.
pub fn pending_delivery(
    ((webhook, due, _), d): (
        crate::store::webhooks::DeliveryKey,
        crate::store::records::DeliveryRecord,
    ),
) -> pb::PendingDelivery {
    pb::PendingDelivery {
        node_id: d.node_id,
        webhook_id: webhook as i64,
        event_id: d.event_id,
        event_type: d.event_type,
        attempts: d.attempts,
        last_error: d.last_error.unwrap_or_default(),
        due_at_ms: due,
    }
}

/// The wire form of a delivery given up.
pub fn failed_delivery(r: crate::store::records::FailedDeliveryRecord) -> pb::FailedDelivery {
    pb::FailedDelivery {
        node_id: r.delivery.node_id,
        webhook_id: r.webhook_id as i64,
        uri: r.uri,
        event_id: r.delivery.event_id,
        event_type: r.delivery.event_type,
        attempts: r.delivery.attempts,
        last_error: r.delivery.last_error.unwrap_or_default(),
        failed_at: r.failed_at,
    }
}

/// The wire form of an invite code's record.
pub fn invite_info((code, r): (String, InviteRecord)) -> pb::InviteCodeInfo {
    pb::InviteCodeInfo {
        code,
        owner: r.owner.unwrap_or_default(),
        created_at: r.created_at,
        redeemed_by: r.redeemed_by.unwrap_or_default(),
        redeemed_at: r.redeemed_at.unwrap_or_default(),
    }
}

/// The wire form of a tenant and how many devices it has.
pub fn tenant_info(t: crate::store::TenantListing) -> pb::TenantInfo {
    use crate::store::records::ExportState;
    pb::TenantInfo {
        node_id: t.record.node_id,
        network: t.record.network,
        signer_version: t.record.signer_version,
        registered_at: t.record.registered_at,
        devices: t.devices,
        state: match t.export {
            None => "active",
            Some(ExportState::Exporting) => "exporting",
            Some(ExportState::Exported) => "exported",
        }
        .into(),
    }
}

/// The tenant's record, or NOT_FOUND naming the command that lists them.
fn registered(
    store: &Store,
    node_id: [u8; 33],
) -> Result<crate::store::records::TenantRecord, Error> {
    store.tenant(&node_id)?.ok_or_else(|| {
        Error::NotFound(format!(
            "node {} is not registered here (see `scheduler tenant list`)",
            hex::encode(node_id)
        ))
    })
}

/// What the store knows of a tenant (nothing of its node-host).
pub async fn tenant_detail(store: &Store, node_id: [u8; 33]) -> Result<pb::TenantDetail, Error> {
    let store = store.clone();
    let (tenant, devices) = blocking(move || {
        let record = registered(&store, node_id)?;
        let devices = store.devices(&node_id)?;
        let tenant = crate::store::TenantListing {
            record,
            devices: devices.len() as u32,
            export: store.export(&node_id)?.map(|e| e.state),
        };
        Ok((tenant, devices))
    })
    .await?;
    Ok(pb::TenantDetail {
        tenant: Some(tenant_info(tenant)),
        devices: devices
            .into_iter()
            .map(|(n, r)| crate::api::list_devices::device_info(n, r))
            .collect(),
        ..Default::default()
    })
}

/// Connects to a running scheduler's admin socket, with the token it wrote at start.
pub async fn connect(paths: &crate::datadir::Paths) -> anyhow::Result<Client> {
    use anyhow::Context;
    let token = std::fs::read_to_string(paths.admin_token())
        .with_context(|| format!("cannot read {}", paths.admin_token().display()))?;
    let token = token.trim().parse().context("admin.token is not a token")?;
    let channel = skylight_client::local::channel(&paths.admin_socket(), None).await?;
    Ok(AdminClient::with_interceptor(channel, WithToken(token)))
}
