//! `cln.Node`: each call to its file's `handle`, the caller checked first.

use skylight_proto::cln::{self as pb, node_server};
use tonic::{Request, Response, Status};

use super::{
    NodeApi, close, connect, error, fundchannel, getinfo, invoice, listfunds, listinvoices,
    listpays, listpeerchannels, listpeers, newaddr, pay, withdraw,
};
use crate::node::NodeError;

type Reply<T> = Result<Response<T>, Status>;

fn reply<T>(answer: Result<T, NodeError>) -> Reply<T> {
    answer.map(Response::new).map_err(error::status)
}

#[tonic::async_trait]
impl node_server::Node for NodeApi {
    async fn getinfo(&self, req: Request<pb::GetinfoRequest>) -> Reply<pb::GetinfoResponse> {
        let ctx = self.ctx(&req)?;
        reply(getinfo::handle(&ctx, req.into_inner()).await)
    }

    async fn invoice(&self, req: Request<pb::InvoiceRequest>) -> Reply<pb::InvoiceResponse> {
        let ctx = self.ctx(&req)?;
        reply(invoice::handle(&ctx, req.into_inner()).await)
    }

    async fn new_addr(&self, req: Request<pb::NewaddrRequest>) -> Reply<pb::NewaddrResponse> {
        let ctx = self.ctx(&req)?;
        reply(newaddr::handle(&ctx, req.into_inner()).await)
    }

    async fn list_peers(&self, req: Request<pb::ListpeersRequest>) -> Reply<pb::ListpeersResponse> {
        let ctx = self.ctx(&req)?;
        reply(listpeers::handle(&ctx, req.into_inner()).await)
    }

    async fn list_funds(&self, req: Request<pb::ListfundsRequest>) -> Reply<pb::ListfundsResponse> {
        let ctx = self.ctx(&req)?;
        reply(listfunds::handle(&ctx, req.into_inner()).await)
    }

    async fn fund_channel(
        &self,
        req: Request<pb::FundchannelRequest>,
    ) -> Reply<pb::FundchannelResponse> {
        let ctx = self.ctx(&req)?;
        reply(fundchannel::handle(&ctx, req.into_inner()).await)
    }

    async fn list_peer_channels(
        &self,
        req: Request<pb::ListpeerchannelsRequest>,
    ) -> Reply<pb::ListpeerchannelsResponse> {
        let ctx = self.ctx(&req)?;
        reply(listpeerchannels::handle(&ctx, req.into_inner()).await)
    }

    async fn pay(&self, req: Request<pb::PayRequest>) -> Reply<pb::PayResponse> {
        let ctx = self.ctx(&req)?;
        reply(pay::handle(&ctx, req.into_inner()).await)
    }

    async fn list_pays(&self, req: Request<pb::ListpaysRequest>) -> Reply<pb::ListpaysResponse> {
        let ctx = self.ctx(&req)?;
        reply(listpays::handle(&ctx, req.into_inner()).await)
    }

    async fn list_invoices(
        &self,
        req: Request<pb::ListinvoicesRequest>,
    ) -> Reply<pb::ListinvoicesResponse> {
        let ctx = self.ctx(&req)?;
        reply(listinvoices::handle(&ctx, req.into_inner()).await)
    }

    async fn close(&self, req: Request<pb::CloseRequest>) -> Reply<pb::CloseResponse> {
        let ctx = self.ctx(&req)?;
        reply(close::handle(&ctx, req.into_inner()).await)
    }

    async fn withdraw(&self, req: Request<pb::WithdrawRequest>) -> Reply<pb::WithdrawResponse> {
        let ctx = self.ctx(&req)?;
        reply(withdraw::handle(&ctx, req.into_inner()).await)
    }

    async fn connect_peer(&self, req: Request<pb::ConnectRequest>) -> Reply<pb::ConnectResponse> {
        let ctx = self.ctx(&req)?;
        reply(connect::handle(&ctx, req.into_inner()).await)
    }
}
