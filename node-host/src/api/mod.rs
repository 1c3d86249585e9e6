//! The node's two gRPC services, `cln.Node` (CLN's node API) and `greenlight.Node` (the
//! signer's streams), one file per RPC. Each file's `handle(ctx, req)` maps the request
//! onto the [`Node`] facade or the [`SignerLink`] and the answer back to the protocol;
//! errors become statuses in one place ([`error`]). The caller is checked first: only a
//! device of this tenant gets a [`Ctx`]. Calls of `cln.Node` not built answer
//! UNIMPLEMENTED (tonic does so for any method absent from our `cln.proto`).

mod cln;
mod convert;
pub mod error;
mod greenlight;

pub mod close;
pub mod connect;
pub mod fundchannel;
pub mod getinfo;
pub mod invoice;
pub mod listfunds;
pub mod listinvoices;
pub mod listpays;
pub mod listpeerchannels;
pub mod listpeers;
pub mod newaddr;
pub mod pay;
pub mod respond_hsm_request;
pub mod stream_hsm_requests;
pub mod withdraw;

use tonic::{Request, Status};

use std::sync::Arc;

use crate::node::Node;
use crate::server::caller;
use crate::server::revoked::RevokedDevices;
use crate::signer_link::service::SignerLink;

/// What a call is handled with: the node, the signer link, and the calling device.
pub struct Ctx<'a> {
    /// The node.
    pub node: &'a Node,
    /// The signer link.
    pub link: &'a SignerLink,
    /// The calling device's name (`default`, `recovered-…`).
    pub device: String,
}

/// Both services, over one node and its signer link.
#[derive(Clone)]
pub struct NodeApi {
    node_id: [u8; 33],
    node: Node,
    link: SignerLink,
    revoked: Arc<RevokedDevices>,
}

impl NodeApi {
    /// The API of `node`, whose signers attach through `link`.
    pub fn new(node: Node, link: SignerLink) -> Self {
        NodeApi {
            node_id: node.id().serialize(),
            node,
            link,
            revoked: Arc::new(RevokedDevices::none()),
        }
    }

    /// Refuses the devices `revoked` names, on every call and on the signers' streams.
    pub fn with_revoked(mut self, revoked: Arc<RevokedDevices>) -> Self {
        self.link = self.link.with_revoked(revoked.clone());
        self.revoked = revoked;
        self
    }

    /// The context of a call from a device of this tenant; anyone else is refused, and so
    /// is a revoked device.
    fn ctx<T>(&self, req: &Request<T>) -> Result<Ctx<'_>, Status> {
        let device = caller::tenant_device(req, &self.node_id)?;
        if self.revoked.contains(&device)
            && !crate::signer_link::faults::is_on_for("ignore-revocations", "")
        {
            return Err(Status::permission_denied(format!(
                "this device ({device}) was revoked by its tenant or the operator"
            )));
        }
        Ok(Ctx {
            node: &self.node,
            link: &self.link,
            device,
        })
    }
}
