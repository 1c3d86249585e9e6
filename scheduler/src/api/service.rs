//! The gRPC services: each method hands over to its handler, which checks who may call it.

use std::pin::Pin;
use std::sync::Arc;

use skylight_proto::greenlight::Empty;
use skylight_proto::scheduler::{self as pb, debug_server, pairing_server, scheduler_server};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::auth;
use crate::error::Error;
use crate::state::State;

/// `scheduler.Scheduler`.
#[derive(Clone)]
pub struct SchedulerService(pub Arc<State>);
/// `scheduler.Debug`.
#[derive(Clone)]
pub struct DebugService(pub Arc<State>);
/// `scheduler.Pairing`.
#[derive(Clone)]
pub struct PairingService(pub Arc<State>);
/// `skylight.devices.Devices`.
#[derive(Clone)]
pub struct DevicesService(pub Arc<State>);

#[tonic::async_trait]
impl skylight_proto::devices::devices_server::Devices for DevicesService {
    async fn list_devices(
        &self,
        req: Request<skylight_proto::devices::ListDevicesRequest>,
    ) -> Reply<skylight_proto::devices::ListDevicesResponse> {
        reply(super::list_devices::handle(&self.0, req).await)
    }

    async fn revoke_device(
        &self,
        req: Request<skylight_proto::devices::RevokeDeviceRequest>,
    ) -> Reply<skylight_proto::devices::DeviceInfo> {
        reply(super::revoke_device::handle(&self.0, req).await)
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn reply<T>(r: Result<T, Error>) -> Reply<T> {
    r.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl scheduler_server::Scheduler for SchedulerService {
    async fn register(
        &self,
        req: Request<pb::RegistrationRequest>,
    ) -> Reply<pb::RegistrationResponse> {
        reply(super::register::handle(&self.0, req).await)
    }

    async fn recover(&self, req: Request<pb::RecoveryRequest>) -> Reply<pb::RecoveryResponse> {
        reply(super::recover::handle(&self.0, req).await)
    }

    async fn get_challenge(
        &self,
        req: Request<pb::ChallengeRequest>,
    ) -> Reply<pb::ChallengeResponse> {
        reply(super::get_challenge::handle(&self.0, req).await)
    }

    async fn schedule(&self, req: Request<pb::ScheduleRequest>) -> Reply<pb::NodeInfoResponse> {
        reply(super::schedule::handle(&self.0, req).await)
    }

    async fn get_node_info(
        &self,
        req: Request<pb::NodeInfoRequest>,
    ) -> Reply<pb::NodeInfoResponse> {
        reply(super::get_node_info::handle(&self.0, req).await)
    }

    async fn maybe_upgrade(&self, req: Request<pb::UpgradeRequest>) -> Reply<pb::UpgradeResponse> {
        reply(super::maybe_upgrade::handle(&self.0, req).await)
    }

    async fn list_invite_codes(
        &self,
        req: Request<pb::ListInviteCodesRequest>,
    ) -> Reply<pb::ListInviteCodesResponse> {
        reply(super::list_invite_codes::handle(&self.0, req).await)
    }

    async fn export_node(
        &self,
        req: Request<pb::ExportNodeRequest>,
    ) -> Reply<pb::ExportNodeResponse> {
        reply(super::export_node::handle(&self.0, req).await)
    }

    async fn add_outgoing_webhook(
        &self,
        req: Request<pb::AddOutgoingWebhookRequest>,
    ) -> Reply<pb::AddOutgoingWebhookResponse> {
        reply(super::add_outgoing_webhook::handle(&self.0, req).await)
    }

    async fn list_outgoing_webhooks(
        &self,
        req: Request<pb::ListOutgoingWebhooksRequest>,
    ) -> Reply<pb::ListOutgoingWebhooksResponse> {
        reply(super::list_outgoing_webhooks::handle(&self.0, req).await)
    }

    async fn delete_webhooks(
        &self,
        req: Request<pb::DeleteOutgoingWebhooksRequest>,
    ) -> Reply<Empty> {
        reply(
            super::delete_webhooks::handle(&self.0, req)
                .await
                .map(|()| Empty {}),
        )
    }

    async fn rotate_outgoing_webhook_secret(
        &self,
        req: Request<pb::RotateOutgoingWebhookSecretRequest>,
    ) -> Reply<pb::WebhookSecretResponse> {
        reply(super::rotate_outgoing_webhook_secret::handle(&self.0, req).await)
    }

    type SignerRequestsStreamStream =
        Pin<Box<dyn Stream<Item = Result<pb::SignerRequest, Status>> + Send + 'static>>;

    async fn signer_requests_stream(
        &self,
        req: Request<Streaming<pb::SignerResponse>>,
    ) -> Reply<Self::SignerRequestsStreamStream> {
        let tenant = auth::tenant(&req, "SignerRequestsStream")?;
        let mut answers = req.into_inner();
        let (id, mut requests) = self.0.signers.attach(tenant)?;
        tracing::info!(node_id = %hex::encode(tenant), "signer attached to the scheduler");
        let state = self.0.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    request = requests.recv() => match request {
                        Some(r) => if tx.send(Ok(r)).await.is_err() { break },
                        None => break,
                    },
                    answer = answers.message() => match answer {
                        Ok(Some(a)) => state.signers.answered(&tenant, &a),
                        // The signer closed its side, or the connection broke.
                        Ok(None) | Err(_) => break,
                    },
                    () = tx.closed() => break,
                }
            }
            state.signers.detach(&tenant, id);
            tracing::info!(node_id = %hex::encode(tenant), "signer detached from the scheduler");
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

#[tonic::async_trait]
impl debug_server::Debug for DebugService {
    async fn report_signer_rejection(&self, req: Request<pb::SignerRejection>) -> Reply<Empty> {
        reply(
            super::report_signer_rejection::handle(&self.0, req)
                .await
                .map(|()| Empty {}),
        )
    }
}

#[tonic::async_trait]
impl pairing_server::Pairing for PairingService {
    async fn pair_device(
        &self,
        req: Request<pb::PairDeviceRequest>,
    ) -> Reply<pb::PairDeviceResponse> {
        // Open to the nobody identity: the new device has no certificate yet.
        reply(super::pair_device::handle(&self.0, req).await)
    }

    async fn get_pairing_data(
        &self,
        req: Request<pb::GetPairingDataRequest>,
    ) -> Reply<pb::GetPairingDataResponse> {
        reply(super::get_pairing_data::handle(&self.0, req).await)
    }

    async fn approve_pairing(&self, req: Request<pb::ApprovePairingRequest>) -> Reply<Empty> {
        reply(
            super::approve_pairing::handle(&self.0, req)
                .await
                .map(|()| Empty {}),
        )
    }
}
