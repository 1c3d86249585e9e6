//! `cln.Node`, CLN's gRPC node interface: one file per call. Calls not built answer
//! UNIMPLEMENTED (tonic does so for any method absent from our `cln.proto`).
//!
//! Each call's module is public so the node can also be driven in process (the benches'
//! floor does); over gRPC, [`ClnService`] checks the caller first.

pub mod close;
pub mod connect;
mod error;
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
pub mod withdraw;

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
    /// The runtime LDK runs on. LDK's calls take locks that a thread waiting for the
    /// signer may hold, so they run there (on its blocking pool), never on the runtime that
    /// serves calls and carries the signer's answers.
    pub ldk: tokio::runtime::Handle,
}

impl ClnService {
    /// Runs `f` (which calls into LDK) on the LDK runtime's blocking pool.
    async fn on_ldk<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, ApiError> {
        self.ldk
            .spawn_blocking(f)
            .await
            .map_err(|e| ApiError::Internal(format!("node task failed: {e}")))
    }

    /// The running node, waiting at most `signer_wait` for it to start (it starts when the
    /// signer first attaches).
    async fn running(&self, what: &str) -> Result<Arc<Running>, ApiError> {
        self.node
            .wait_running(self.signer_wait)
            .await
            .ok_or_else(|| ApiError::NotStarted(what.to_string()))
    }

    /// The running node with a signer attached, waiting at most `signer_wait` for both.
    async fn node_with_signer(&self, what: &str) -> Result<Arc<Running>, ApiError> {
        let until = tokio::time::Instant::now() + self.signer_wait;
        let running = self.node.wait_running(self.signer_wait).await;
        let mut signers = self.stage.watch_signers();
        let attached = tokio::time::timeout_at(until, signers.wait_for(|n| *n > 0))
            .await
            .is_ok_and(|r| r.is_ok());
        match running {
            Some(r) if attached => Ok(r),
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
        Ok(Response::new(getinfo::getinfo(self).await?))
    }

    async fn invoice(&self, req: Request<pb::InvoiceRequest>) -> Reply<pb::InvoiceResponse> {
        crate::caller::tenant_device(&req, &self.node_id)?;
        Ok(Response::new(
            invoice::invoice(self, req.into_inner()).await?,
        ))
    }

    async fn new_addr(&self, req: Request<pb::NewaddrRequest>) -> Reply<pb::NewaddrResponse> {
        crate::caller::tenant_device(&req, &self.node_id)?;
        Ok(Response::new(
            newaddr::newaddr(self, req.into_inner()).await?,
        ))
    }

    async fn list_peers(&self, req: Request<pb::ListpeersRequest>) -> Reply<pb::ListpeersResponse> {
        crate::caller::tenant_device(&req, &self.node_id)?;
        Ok(Response::new(
            listpeers::listpeers(self, req.into_inner()).await?,
        ))
    }

    async fn list_funds(&self, req: Request<pb::ListfundsRequest>) -> Reply<pb::ListfundsResponse> {
        crate::caller::tenant_device(&req, &self.node_id)?;
        Ok(Response::new(
            listfunds::listfunds(self, req.into_inner()).await?,
        ))
    }

    async fn fund_channel(
        &self,
        req: Request<pb::FundchannelRequest>,
    ) -> Reply<pb::FundchannelResponse> {
        crate::caller::tenant_device(&req, &self.node_id)?;
        Ok(Response::new(
            fundchannel::fundchannel(self, req.into_inner()).await?,
        ))
    }

    async fn list_peer_channels(
        &self,
        req: Request<pb::ListpeerchannelsRequest>,
    ) -> Reply<pb::ListpeerchannelsResponse> {
        crate::caller::tenant_device(&req, &self.node_id)?;
        Ok(Response::new(
            listpeerchannels::listpeerchannels(self, req.into_inner()).await?,
        ))
    }

    async fn pay(&self, req: Request<pb::PayRequest>) -> Reply<pb::PayResponse> {
        crate::caller::tenant_device(&req, &self.node_id)?;
        Ok(Response::new(pay::pay(self, req.into_inner()).await?))
    }

    async fn list_pays(&self, req: Request<pb::ListpaysRequest>) -> Reply<pb::ListpaysResponse> {
        crate::caller::tenant_device(&req, &self.node_id)?;
        Ok(Response::new(
            listpays::listpays(self, req.into_inner()).await?,
        ))
    }

    async fn list_invoices(
        &self,
        req: Request<pb::ListinvoicesRequest>,
    ) -> Reply<pb::ListinvoicesResponse> {
        crate::caller::tenant_device(&req, &self.node_id)?;
        Ok(Response::new(
            listinvoices::listinvoices(self, req.into_inner()).await?,
        ))
    }

    async fn close(&self, req: Request<pb::CloseRequest>) -> Reply<pb::CloseResponse> {
        crate::caller::tenant_device(&req, &self.node_id)?;
        Ok(Response::new(close::close(self, req.into_inner()).await?))
    }

    async fn withdraw(&self, req: Request<pb::WithdrawRequest>) -> Reply<pb::WithdrawResponse> {
        crate::caller::tenant_device(&req, &self.node_id)?;
        Ok(Response::new(
            withdraw::withdraw(self, req.into_inner()).await?,
        ))
    }

    async fn connect_peer(&self, req: Request<pb::ConnectRequest>) -> Reply<pb::ConnectResponse> {
        crate::caller::tenant_device(&req, &self.node_id)?;
        Ok(Response::new(
            connect::connect(self, req.into_inner()).await?,
        ))
    }
}

/// A channel's state in CLN's terms.
fn channel_state(
    c: &lightning_signer::lightning::ln::channel_state::ChannelDetails,
) -> pb::ChannelState {
    use lightning_signer::lightning::ln::channel_state::ChannelShutdownState;
    match c.channel_shutdown_state {
        Some(ChannelShutdownState::NotShuttingDown) | None => {}
        Some(ChannelShutdownState::ShutdownComplete) => return pb::ChannelState::ClosingdComplete,
        Some(ChannelShutdownState::NegotiatingClosingFee) => {
            return pb::ChannelState::ClosingdSigexchange;
        }
        Some(_) => return pb::ChannelState::ChanneldShuttingDown,
    }
    if c.funding_txo.is_none() {
        pb::ChannelState::Openingd
    } else if !c.is_channel_ready {
        pb::ChannelState::ChanneldAwaitingLockin
    } else {
        pb::ChannelState::ChanneldNormal
    }
}

/// A txid as CLN's gRPC carries it: the bytes of its hex form (display order).
fn txid_bytes(txid: &lightning_signer::bitcoin::Txid) -> Vec<u8> {
    use lightning_signer::bitcoin::hashes::Hash;
    let mut b = txid.to_byte_array().to_vec();
    b.reverse();
    b
}

/// What is ours in a channel: what we would get on chain if it closed now (sat, as msat),
/// from its monitor; nothing before the channel has one.
fn our_balance_msat(
    running: &Running,
    c: &lightning_signer::lightning::ln::channel_state::ChannelDetails,
) -> u64 {
    running
        .ldk
        .chain_monitor
        .get_monitor(c.channel_id)
        .map(|m| {
            m.get_claimable_balances()
                .iter()
                .map(|b| b.claimable_amount_satoshis())
                .sum::<u64>()
                * 1000
        })
        .unwrap_or(0)
}

/// The fee rate a call asks for, sat per 1000 weight units, never below LDK's floor: given
/// outright, or one of CLN's names mapped to a confirmation target of the fee table.
fn sat_per_kw(feerate: Option<&pb::Feerate>, fees: &crate::ldk::FeeRates) -> u32 {
    use lightning_signer::lightning::chain::chaininterface::{ConfirmationTarget, FeeEstimator};
    use pb::feerate::Style;
    let target = |t| fees.get_est_sat_per_1000_weight(t);
    match feerate.and_then(|f| f.style.as_ref()) {
        Some(Style::Perkw(r)) => *r,
        Some(Style::Perkb(r)) => r / 4,
        Some(Style::Slow(_)) => target(ConfirmationTarget::ChannelCloseMinimum),
        Some(Style::Urgent(_)) => target(ConfirmationTarget::UrgentOnChainSweep),
        Some(Style::Normal(_)) | None => target(ConfirmationTarget::NonAnchorChannelFee),
    }
    .max(crate::ldk::FEE_FLOOR)
}
