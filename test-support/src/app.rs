//! Tenants as an app drives them, for the benchmarks: the node API through the client
//! library, and the signer (signer-cli's run loop, with its state marks on disk) in this
//! process, started and stopped at will, as a phone app wakes and sleeps.

use std::time::Duration;

use bitcoin::Network;
use skylight_client::secret::HsmSecret;
use skylight_client::signed_request::RequestSigner;
use skylight_client::tls::TlsIdentity;
use skylight_proto::cln::node_client::NodeClient;
use skylight_proto::cln::{self as pb};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::{NewTenant, Scheduler, register_new_tenant};

/// A registered tenant, its node API connected.
pub struct AppTenant {
    uri: String,
    secret: HsmSecret,
    device: TlsIdentity,
    /// Signs the tenant's node API requests with its device key.
    pub sign: RequestSigner,
    /// Its node API.
    pub node: NodeClient<Channel>,
    /// Its node id.
    pub id: Vec<u8>,
    dir: tempfile::TempDir,
}

/// A signer running in this process for a tenant.
pub struct RunningSigner {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningSigner {
    /// Stops the signer and waits for it to have let go of its streams.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

impl AppTenant {
    /// Registers a new tenant with the scheduler at `uri` and starts its signer; returns
    /// once its node runs with the signer.
    pub async fn start(uri: &str, nobody: &TlsIdentity) -> (AppTenant, RunningSigner) {
        let NewTenant { secret, device, .. } = register_new_tenant(uri, nobody).await;
        // The device's rune, as signer-cli mints it at register: without it the signer
        // counts none of the device's requests.
        let rune = skylight_client::runes::RuneMaster::new(&secret)
            .device_rune(&device.key_pem)
            .unwrap();
        let sign = RequestSigner::new(&device.key_pem)
            .unwrap()
            .with_rune(&rune);
        let node = skylight_client::node::connect(uri, &device).await.unwrap();
        let mut t = AppTenant {
            uri: uri.to_string(),
            secret,
            device,
            sign,
            node,
            id: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
        };
        let signer = t.start_signer();
        t.id = t.ready().await.id;
        (t, signer)
    }

    /// Starts the tenant's signer, its state marks read from (and kept in) its directory,
    /// as an app that wakes up does.
    pub fn start_signer(&self) -> RunningSigner {
        let signer = skylight_client::signer::Signer::new(&self.secret, Network::Regtest)
            .with_watermarks(&self.dir.path().join("marks"))
            .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(skylight_client::follow::run(
            self.uri.clone(),
            self.device.clone(),
            signer,
            async move {
                let _ = stopped.await;
            },
        ));
        RunningSigner { stop, task }
    }

    /// Connects the node API again (scheduling the node, started if it was stopped).
    pub async fn reconnect(&mut self) {
        self.node = skylight_client::node::connect(&self.uri, &self.device)
            .await
            .unwrap();
    }

    /// Waits for the node to run with its signer; its `Getinfo`.
    pub async fn ready(&mut self) -> pb::GetinfoResponse {
        loop {
            let info = self
                .node
                .getinfo(self.sign.sign(pb::GetinfoRequest {}).unwrap())
                .await
                .unwrap()
                .into_inner();
            if info.warning_lightningd_sync.is_none() {
                return info;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// An invoice of the tenant's, labelled `label`, for `msat`.
    pub async fn invoice(&mut self, label: &str, msat: u64) -> String {
        let req = pb::InvoiceRequest {
            label: label.into(),
            description: "bench".into(),
            amount_msat: Some(pb::AmountOrAny {
                value: Some(pb::amount_or_any::Value::Amount(pb::Amount { msat })),
            }),
            ..Default::default()
        };
        self.node
            .invoice(self.sign.sign(req).unwrap())
            .await
            .unwrap()
            .into_inner()
            .bolt11
    }

    /// Pays `bolt11`.
    pub async fn pay(&mut self, bolt11: String) {
        let req = self
            .sign
            .sign(pb::PayRequest {
                bolt11,
                ..Default::default()
            })
            .unwrap();
        self.node.pay(req).await.expect("pay");
    }

    /// Funds this tenant's wallet from the faucet, opens a channel of `msat` to `to`, and
    /// waits until it is usable.
    pub async fn open_channel(&mut self, s: &Scheduler, to: &mut AppTenant, msat: u64) {
        let addr = self
            .node
            .new_addr(self.sign.sign(pb::NewaddrRequest::default()).unwrap())
            .await
            .unwrap()
            .into_inner()
            .bech32
            .unwrap();
        s.chain(&["fund", &addr, "1"]);
        s.chain(&["mine", "1"]);
        loop {
            let funds = self
                .node
                .list_funds(self.sign.sign(pb::ListfundsRequest::default()).unwrap())
                .await
                .unwrap()
                .into_inner();
            if !funds.outputs.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let info = to.ready().await;
        let bind = &info.binding[0];
        let peer = format!(
            "{}@{}:{}",
            hex::encode(&to.id),
            bind.address.as_deref().unwrap(),
            bind.port.unwrap()
        );
        let connect = pb::ConnectRequest {
            id: peer,
            ..Default::default()
        };
        self.node
            .connect_peer(self.sign.sign(connect).unwrap())
            .await
            .unwrap();
        let fund = pb::FundchannelRequest {
            id: to.id.clone(),
            amount: Some(pb::AmountOrAll {
                value: Some(pb::amount_or_all::Value::Amount(pb::Amount { msat })),
            }),
            ..Default::default()
        };
        self.node
            .fund_channel(self.sign.sign(fund).unwrap())
            .await
            .unwrap();
        s.chain(&["mine", "6"]);
        while !self.channel_usable().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the tenant's first channel is open and its peer connected.
    pub async fn channel_usable(&mut self) -> bool {
        let c = self
            .node
            .list_peer_channels(
                self.sign
                    .sign(pb::ListpeerchannelsRequest::default())
                    .unwrap(),
            )
            .await
            .unwrap()
            .into_inner();
        c.channels
            .first()
            .is_some_and(|c| c.state == pb::ChannelState::ChanneldNormal as i32 && c.peer_connected)
    }
}
