//! `greenlight.Node`: the signer's streams go to their files' `handle`, the caller checked
//! first; the other calls answer UNIMPLEMENTED.

use skylight_proto::greenlight::{self as pb, node_server};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use super::{NodeApi, error, respond_hsm_request, stream_hsm_requests};

type Reply<T> = Result<Response<T>, Status>;
type Stream<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

fn not_built<T>(rpc: &str) -> Reply<T> {
    Err(Status::unimplemented(format!(
        "{rpc} is not built yet in this version of Skylight's node-host"
    )))
}

#[tonic::async_trait]
impl node_server::Node for NodeApi {
    async fn lsp_invoice(
        &self,
        req: Request<pb::LspInvoiceRequest>,
    ) -> Reply<pb::LspInvoiceResponse> {
        self.ctx(&req)?;
        not_built("LspInvoice")
    }

    type StreamIncomingStream = Stream<pb::IncomingPayment>;
    async fn stream_incoming(
        &self,
        req: Request<pb::StreamIncomingFilter>,
    ) -> Reply<Self::StreamIncomingStream> {
        self.ctx(&req)?;
        not_built("StreamIncoming")
    }

    type StreamLogStream = Stream<pb::LogEntry>;
    async fn stream_log(&self, req: Request<pb::StreamLogRequest>) -> Reply<Self::StreamLogStream> {
        self.ctx(&req)?;
        not_built("StreamLog")
    }

    type StreamCustommsgStream = Stream<pb::Custommsg>;
    async fn stream_custommsg(
        &self,
        req: Request<pb::StreamCustommsgRequest>,
    ) -> Reply<Self::StreamCustommsgStream> {
        self.ctx(&req)?;
        not_built("StreamCustommsg")
    }

    type StreamNodeEventsStream = Stream<pb::NodeEvent>;
    async fn stream_node_events(
        &self,
        req: Request<pb::NodeEventsRequest>,
    ) -> Reply<Self::StreamNodeEventsStream> {
        self.ctx(&req)?;
        not_built("StreamNodeEvents")
    }

    type StreamHsmRequestsStream = Stream<pb::HsmRequest>;
    async fn stream_hsm_requests(
        &self,
        req: Request<pb::Empty>,
    ) -> Reply<Self::StreamHsmRequestsStream> {
        let ctx = self.ctx(&req)?;
        let requests = stream_hsm_requests::handle(&ctx, req.into_inner());
        Ok(Response::new(Box::pin(requests.map(Ok))))
    }

    async fn respond_hsm_request(&self, req: Request<pb::HsmResponse>) -> Reply<pb::Empty> {
        let ctx = self.ctx(&req)?;
        respond_hsm_request::handle(&ctx, req.into_inner())
            .map(Response::new)
            .map_err(error::link_status)
    }

    async fn configure(&self, req: Request<pb::GlConfig>) -> Reply<pb::Empty> {
        self.ctx(&req)?;
        not_built("Configure")
    }

    async fn trampoline_pay(
        &self,
        req: Request<pb::TrampolinePayRequest>,
    ) -> Reply<pb::TrampolinePayResponse> {
        self.ctx(&req)?;
        not_built("TrampolinePay")
    }
}
