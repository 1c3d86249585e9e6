//! `greenlight.Node`: the signer plumbing is built; the other calls answer UNIMPLEMENTED.

use skylight_proto::greenlight::{self as pb, node_server};
use tonic::{Request, Response, Status};

use crate::hsm_service::{HsmService, RequestStream};

/// The `greenlight.Node` service.
#[derive(Clone)]
pub struct NodeService {
    /// Signer plumbing.
    pub hsm: HsmService,
}

type Reply<T> = Result<Response<T>, Status>;
type Stream<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

fn not_built<T>(rpc: &str) -> Reply<T> {
    Err(Status::unimplemented(format!(
        "{rpc} is not built yet in this version of Skylight's node-host"
    )))
}

#[tonic::async_trait]
impl node_server::Node for NodeService {
    async fn lsp_invoice(
        &self,
        req: Request<pb::LspInvoiceRequest>,
    ) -> Reply<pb::LspInvoiceResponse> {
        self.hsm.check_caller(&req)?;
        not_built("LspInvoice")
    }

    type StreamIncomingStream = Stream<pb::IncomingPayment>;
    async fn stream_incoming(
        &self,
        req: Request<pb::StreamIncomingFilter>,
    ) -> Reply<Self::StreamIncomingStream> {
        self.hsm.check_caller(&req)?;
        not_built("StreamIncoming")
    }

    type StreamLogStream = Stream<pb::LogEntry>;
    async fn stream_log(&self, req: Request<pb::StreamLogRequest>) -> Reply<Self::StreamLogStream> {
        self.hsm.check_caller(&req)?;
        not_built("StreamLog")
    }

    type StreamCustommsgStream = Stream<pb::Custommsg>;
    async fn stream_custommsg(
        &self,
        req: Request<pb::StreamCustommsgRequest>,
    ) -> Reply<Self::StreamCustommsgStream> {
        self.hsm.check_caller(&req)?;
        not_built("StreamCustommsg")
    }

    type StreamNodeEventsStream = Stream<pb::NodeEvent>;
    async fn stream_node_events(
        &self,
        req: Request<pb::NodeEventsRequest>,
    ) -> Reply<Self::StreamNodeEventsStream> {
        self.hsm.check_caller(&req)?;
        not_built("StreamNodeEvents")
    }

    type StreamHsmRequestsStream = RequestStream;
    async fn stream_hsm_requests(
        &self,
        req: Request<pb::Empty>,
    ) -> Reply<Self::StreamHsmRequestsStream> {
        self.hsm.stream_hsm_requests(req).map(Response::new)
    }

    async fn respond_hsm_request(&self, req: Request<pb::HsmResponse>) -> Reply<pb::Empty> {
        self.hsm.respond_hsm_request(req).map(Response::new)
    }

    async fn configure(&self, req: Request<pb::GlConfig>) -> Reply<pb::Empty> {
        self.hsm.check_caller(&req)?;
        not_built("Configure")
    }

    async fn trampoline_pay(
        &self,
        req: Request<pb::TrampolinePayRequest>,
    ) -> Reply<pb::TrampolinePayResponse> {
        self.hsm.check_caller(&req)?;
        not_built("TrampolinePay")
    }
}
