//! `signer-cli run`: the node's signer kept attached, wherever and whenever the node runs.
//!
//! MaybeUpgrade first (Greenlight's order), then two loops side by side: the node loop waits
//! for the node to be scheduled (GetNodeInfo with wait), attaches to its hsm stream and
//! answers every request with VLS; the scheduler loop keeps `SignerRequestsStream` open.
//! Either reconnects with backoff when its stream drops. A node its owner runs standalone
//! has no scheduler: [`run_direct`] attaches to it alone.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use skylight_proto::greenlight::node_client::NodeClient;
use skylight_proto::greenlight::{Empty, HsmRequest, HsmResponse};
use skylight_proto::scheduler::debug_client::DebugClient;
use skylight_proto::scheduler::{
    NodeInfoRequest, SignerRejection, SignerRequest, SignerResponse, UpgradeRequest,
    signer_request, signer_response,
};
use tonic::Code;

use crate::identity::SIGNER_VERSION;
use crate::signer::Signer;
use crate::signer::revoked::RevokedKeys;
use crate::tls::{self, TlsIdentity};
use skylight_proto::devices::ListDevicesRequest;
use skylight_proto::devices::devices_client::DevicesClient;

/// Backoff between reconnects: doubles from 250 ms to 30 s, reset after a good session.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(Duration::from_millis(250))
    }
    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(30));
    }
    fn reset(&mut self) {
        self.0 = Duration::from_millis(250);
    }
}

/// Signing requests answered by every signer running in this process (benchmarks count
/// round trips with it).
pub static ANSWERED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Runs the signer until `stop` resolves.
pub async fn run(
    scheduler_uri: String,
    device: TlsIdentity,
    signer: Signer,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    maybe_upgrade(&scheduler_uri, &device).await?;
    let revoked = signer.revoked();
    let signer = Arc::new(Mutex::new(signer));
    let node = node_loop(scheduler_uri.clone(), device.clone(), signer.clone());
    let revocations = revocations_loop(scheduler_uri.clone(), device.clone(), revoked);
    let scheduler = scheduler_loop(scheduler_uri, device, signer);
    tokio::select! {
        () = stop => Ok(()),
        r = node => r,
        r = scheduler => r,
        () = revocations => Ok(()),
    }
}

/// Runs the signer attached to the node at `node_uri` alone, with no scheduler (a node run
/// standalone, by its owner), until `stop` resolves: it reconnects with backoff whenever the
/// node is down or its stream drops.
pub async fn run_direct(
    node_uri: String,
    device: TlsIdentity,
    signer: Signer,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let signer = Arc::new(Mutex::new(signer));
    let attached = async {
        let mut backoff = Backoff::new();
        loop {
            attach_once(None, &node_uri, &device, &signer, &mut backoff).await;
        }
    };
    tokio::select! {
        () = stop => Ok(()),
        () = attached => Ok(()),
    }
}

/// Greenlight's signer calls MaybeUpgrade first, retrying only on UNAVAILABLE.
async fn maybe_upgrade(uri: &str, device: &TlsIdentity) -> Result<()> {
    loop {
        let attempt = async {
            let mut c = tls::scheduler(uri, device).await?;
            c.maybe_upgrade(UpgradeRequest {
                signer_version: SIGNER_VERSION.into(),
                ..Default::default()
            })
            .await
            .map_err(anyhow::Error::from)
        };
        match attempt.await {
            Ok(_) => return Ok(()),
            Err(e)
                if e.downcast_ref::<tonic::Status>()
                    .is_some_and(|s| s.code() != Code::Unavailable) =>
            {
                return Err(e).context("the scheduler refused MaybeUpgrade");
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "scheduler unreachable; retrying in 3 s");
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
        }
    }
}

async fn node_loop(uri: String, device: TlsIdentity, signer: Arc<Mutex<Signer>>) -> Result<()> {
    let mut backoff = Backoff::new();
    loop {
        let node_uri = match wait_for_node(&uri, &device).await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot ask the scheduler where the node is");
                backoff.wait().await;
                continue;
            }
        };
        attach_once(Some(&uri), &node_uri, &device, &signer, &mut backoff).await;
    }
}

/// One session on the node's hsm stream, said in the log, then the backoff's wait (reset
/// first after a session the node ended).
async fn attach_once(
    scheduler_uri: Option<&str>,
    node_uri: &str,
    device: &TlsIdentity,
    signer: &Arc<Mutex<Signer>>,
    backoff: &mut Backoff,
) {
    tracing::info!(node = %node_uri, "attaching to the node");
    match node_session(scheduler_uri, node_uri, device, signer).await {
        Ok(answered) => {
            tracing::info!(answered, "the node closed the session");
            backoff.reset();
        }
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "node session ended"),
    }
    backoff.wait().await;
}

/// Long-polls until the node is scheduled; returns its URI.
async fn wait_for_node(uri: &str, device: &TlsIdentity) -> Result<String> {
    let mut c = tls::scheduler(uri, device).await?;
    loop {
        let info = c
            .get_node_info(NodeInfoRequest {
                node_id: vec![],
                wait: true,
            })
            .await?
            .into_inner();
        if !info.grpc_uri.is_empty() {
            return Ok(info.grpc_uri);
        }
    }
}

/// One attachment to the node's hsm stream; returns how many requests were answered.
/// Refusals are reported to the scheduler at `scheduler_uri`, if there is one.
async fn node_session(
    scheduler_uri: Option<&str>,
    node_uri: &str,
    device: &TlsIdentity,
    signer: &Arc<Mutex<Signer>>,
) -> Result<u64> {
    let channel = tls::channel(node_uri, device).await?;
    // Signer state grows with channels and payments: well above gRPC's 4 MB default.
    let mut node = NodeClient::new(channel)
        .max_decoding_message_size(32 * 1024 * 1024)
        .max_encoding_message_size(32 * 1024 * 1024);
    let mut stream = node.stream_hsm_requests(Empty {}).await?.into_inner();
    signer
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .begin_session();
    // Answers go back in order from their own task, so the next request (often already
    // waiting: a point sent right behind a validation) is worked on while the node stores
    // the last answer's state; each answer carries every state change not acknowledged
    // yet, so the node never acts on one without the state it rests on.
    let (answers, mut to_send) = tokio::sync::mpsc::channel::<(HsmRequest, HsmResponse)>(64);
    let responder = {
        let (signer, scheduler_uri, device) = (
            signer.clone(),
            scheduler_uri.map(str::to_string),
            device.clone(),
        );
        tokio::spawn(async move {
            let mut answered = 0u64;
            while let Some((request, response)) = to_send.recv().await {
                let refused = response.error.starts_with("policy");
                let (state, error) = (response.signer_state.clone(), response.error.clone());
                match node.respond_hsm_request(response).await {
                    // Only now does the node hold the state: stop sending it.
                    Ok(_) => signer
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .acknowledged(&state),
                    Err(s) => {
                        tracing::warn!(request = request.request_id, status = %s.message(), "the node did not take the answer")
                    }
                }
                if refused {
                    tracing::warn!(request = request.request_id, reason = %error, "refused to sign");
                    if let Some(uri) = &scheduler_uri {
                        report_rejection(uri, &device, &request, &error).await;
                    }
                }
                answered += 1;
                ANSWERED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            answered
        })
    };
    let received = async {
        while let Some(request) = stream.message().await? {
            let signer = signer.clone();
            // VLS work is CPU-bound: keep it off the async workers. The request comes back
            // with its answer, for the report should it be refused.
            let answered = tokio::task::spawn_blocking(move || {
                let response = signer
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .handle(&request);
                (request, response)
            })
            .await?;
            if answers.send(answered).await.is_err() {
                break;
            }
        }
        anyhow::Ok(())
    }
    .await;
    // The answers already made still go back before the session ends.
    drop(answers);
    let answered = responder.await?;
    received.map(|()| answered)
}

/// Tells the operator (Debug.ReportSignerRejection) why a request was refused.
async fn report_rejection(uri: &str, device: &TlsIdentity, request: &HsmRequest, reason: &str) {
    let report = async {
        let mut c = DebugClient::new(tls::channel(uri, device).await?);
        c.report_signer_rejection(SignerRejection {
            msg: reason.to_string(),
            request: Some(request.clone()),
            git_version: SIGNER_VERSION.into(),
            node_id: vec![],
        })
        .await?;
        anyhow::Ok(())
    };
    if let Err(e) = report.await {
        tracing::warn!(error = %format!("{e:#}"), "cannot report the refusal to the scheduler");
    }
}

/// How often the signer reads the tenant's device list for revocations.
pub const REVOCATIONS_EVERY: Duration = Duration::from_secs(30);

/// Learns of devices revoked at the scheduler (the operator's revocations too): at start,
/// then every [`REVOCATIONS_EVERY`]. A revocation only narrows what the signer approves, so
/// taking it from the scheduler trusts it with nothing.
async fn revocations_loop(uri: String, device: TlsIdentity, revoked: Arc<RevokedKeys>) {
    loop {
        let listed = async {
            let channel = tls::channel(&uri, &device).await?;
            let list = DevicesClient::new(channel)
                .list_devices(ListDevicesRequest {})
                .await?
                .into_inner();
            anyhow::Ok(list.devices)
        };
        match listed.await {
            Ok(devices) => {
                let news: Vec<(Vec<u8>, String)> = devices
                    .into_iter()
                    .filter(|d| d.revoked_at != 0 && !d.public_key.is_empty())
                    .map(|d| (d.public_key, d.name))
                    .collect();
                match revoked.add(&news) {
                    Ok(true) => tracing::warn!(
                        "the scheduler lists newly revoked devices: their requests count for nothing from now on"
                    ),
                    Ok(false) => {}
                    Err(e) => tracing::error!(error = %e, "cannot record revoked devices"),
                }
            }
            Err(e) => tracing::debug!(error = %format!("{e:#}"), "cannot read the device list"),
        }
        tokio::time::sleep(REVOCATIONS_EVERY).await;
    }
}

/// The signer's answer to a request from the scheduler: a pairing approval (see
/// [`Signer::approve_pairing`]) answered with the new device's rune, or refused with an
/// empty answer (the scheduler tells the devices it was denied; the reason stays here).
fn answer_scheduler(signer: &Mutex<Signer>, req: SignerRequest) -> SignerResponse {
    let response = match req.request {
        Some(signer_request::Request::ApprovePairing(approval)) => {
            let approved = signer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .approve_pairing(&approval, crate::signed_request::now_ms());
            match approved {
                Ok(r) => {
                    tracing::info!(device = %approval.device_name, "approved pairing a new device");
                    Some(signer_response::Response::ApprovePairing(r))
                }
                Err(why) => {
                    tracing::warn!(device = %approval.device_name, %why, "refused to pair a new device");
                    Some(signer_response::Response::Empty(Empty {}))
                }
            }
        }
        None => {
            tracing::warn!(
                request = req.request_id,
                "the scheduler sent a request this signer does not handle"
            );
            None
        }
    };
    SignerResponse {
        request_id: req.request_id,
        response,
    }
}

async fn scheduler_loop(
    uri: String,
    device: TlsIdentity,
    signer: Arc<Mutex<Signer>>,
) -> Result<()> {
    let mut backoff = Backoff::new();
    loop {
        let session = async {
            let mut c = tls::scheduler(&uri, &device).await?;
            let (answers, outbound) = tokio::sync::mpsc::channel::<SignerResponse>(16);
            let mut requests = c
                .signer_requests_stream(tokio_stream::wrappers::ReceiverStream::new(outbound))
                .await?
                .into_inner();
            while let Some(req) = requests.message().await? {
                let _ = answers.send(answer_scheduler(&signer, req)).await;
            }
            anyhow::Ok(())
        };
        match session.await {
            Ok(()) => backoff.reset(),
            Err(e) => tracing::debug!(error = %format!("{e:#}"), "scheduler stream ended"),
        }
        backoff.wait().await;
    }
}
