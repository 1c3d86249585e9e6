//! `cln.Node`, CLN's gRPC node interface: one file per call. Calls not built answer
//! UNIMPLEMENTED (tonic does so for any method absent from our `cln.proto`).

mod error;
mod getinfo;
mod invoice;

use std::sync::Arc;
use std::time::Duration;

use lightning_signer::bitcoin::Network;
use skylight_proto::cln::{self as pb, node_server};
use tonic::{Request, Response, Status};

pub use error::ApiError;

use crate::node::{NodeHandle, Running};
use crate::stage::Stage;

/// The `cln.Node` service.
#[derive(Clone)]
pub struct ClnService {
    /// The tenant's node id.
    pub node_id: [u8; 33],
    /// Bitcoin network.
    pub network: Network,
    /// The node.
    pub node: NodeHandle,
    /// The signer's stage.
    pub stage: Arc<Stage>,
    /// How long a call that needs the signer waits for one.
    pub signer_wait: Duration,
}

impl ClnService {
    /// The running node with a signer attached, waiting at most `signer_wait` for both.
    async fn node_with_signer(&self, what: &str) -> Result<Arc<Running>, ApiError> {
        let until = tokio::time::Instant::now() + self.signer_wait;
        let running = self.node.wait_running(self.signer_wait).await;
        while self.stage.signers() == 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        match running {
            Some(r) if self.stage.signers() > 0 => Ok(r),
            _ => Err(ApiError::NoSigner {
                what: what.to_string(),
                waited: self.signer_wait,
            }),
        }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl node_server::Node for ClnService {
    async fn getinfo(&self, req: Request<pb::GetinfoRequest>) -> Reply<pb::GetinfoResponse> {
        crate::caller::tenant_device(&req, &self.node_id)?;
        Ok(Response::new(getinfo::getinfo(self)))
    }

    async fn invoice(&self, req: Request<pb::InvoiceRequest>) -> Reply<pb::InvoiceResponse> {
        crate::caller::tenant_device(&req, &self.node_id)?;
        Ok(Response::new(
            invoice::invoice(self, req.into_inner()).await?,
        ))
    }
}
