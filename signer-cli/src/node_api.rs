//! Calls to the node API (`cln.Node`), signed as Greenlight's clients sign them: the node
//! refuses any call not signed by the key of the device certificate that makes it.
//!
//! The signature is ECDSA P-256/SHA-256 over the gRPC frame of the request (flag byte,
//! u32be length, message) followed by u64be(milliseconds since the epoch), sent in the
//! `glauthpubkey`, `glauthsig` and `glts` headers, base64 without padding.

use anyhow::{Context, Result, anyhow};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use skylight_proto::cln::node_client::NodeClient;
use skylight_proto::scheduler::ScheduleRequest;
use tonic::transport::Channel;

use crate::client::{self, Refused, TlsIdentity};

/// `msg` as gRPC puts it on the wire (a flag byte for "not compressed", the length as
/// u32be, the message): what a device signs and node-host ships to signers.
pub fn grpc_frame(msg: &impl prost::Message) -> Vec<u8> {
    let payload = msg.encode_to_vec();
    let mut frame = Vec::with_capacity(payload.len() + 5);
    frame.push(0);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    frame
}

/// Signs requests with the device key.
pub struct RequestSigner {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl RequestSigner {
    /// The signer for the device whose key (PKCS#8 PEM) is `key_pem`.
    pub fn new(key_pem: &[u8]) -> Result<Self> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(key_pem)
            .map_err(|e| anyhow!("the device key is not a PKCS#8 PEM key: {e}"))?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            der.secret_pkcs8_der(),
            &rng,
        )
        .map_err(|_| anyhow!("the device key is not a P-256 key"))?;
        Ok(RequestSigner { key, rng })
    }

    /// `msg` as a request carrying the signature headers, stamped `ts_ms`.
    pub fn sign_at<T: prost::Message>(&self, msg: T, ts_ms: u64) -> Result<tonic::Request<T>> {
        let mut signed = grpc_frame(&msg);
        signed.extend_from_slice(&ts_ms.to_be_bytes());
        let sig = self
            .key
            .sign(&self.rng, &signed)
            .map_err(|_| anyhow!("cannot sign the request"))?;
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        let mut req = tonic::Request::new(msg);
        let md = req.metadata_mut();
        md.insert(
            "glauthpubkey",
            b64.encode(self.key.public_key().as_ref()).parse()?,
        );
        md.insert("glauthsig", b64.encode(sig.as_ref()).parse()?);
        md.insert("glts", b64.encode(ts_ms.to_be_bytes()).parse()?);
        Ok(req)
    }

    /// `msg` as a signed request stamped now.
    pub fn sign<T: prost::Message>(&self, msg: T) -> Result<tonic::Request<T>> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("the clock is before 1970")?
            .as_millis() as u64;
        self.sign_at(msg, now)
    }
}

/// A node API client: the node is scheduled first (started if it was not running). A node
/// caught stopping (idle, say) is scheduled again: the scheduler starts a new one once the
/// old one has exited.
pub async fn connect(scheduler_uri: &str, device: &TlsIdentity) -> Result<NodeClient<Channel>> {
    let mut scheduler = client::scheduler(scheduler_uri, device).await?;
    let mut attempt = 0;
    loop {
        let info = scheduler
            .schedule(ScheduleRequest::default())
            .await
            .map_err(|status| Refused {
                rpc: "Schedule",
                status,
            })?
            .into_inner();
        match client::channel(&info.grpc_uri, device).await {
            Ok(channel) => return Ok(NodeClient::new(channel)),
            Err(e) if attempt < 20 => {
                tracing::debug!(error = %format!("{e:#}"), "the node is not reachable; scheduling it again");
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot reach the node at {}", info.grpc_uri));
            }
        }
    }
}

/// What `node getinfo` prints.
pub fn getinfo_json(r: &skylight_proto::cln::GetinfoResponse) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": hex::encode(&r.id),
        "alias": r.alias,
        "color": hex::encode(&r.color),
        "num_peers": r.num_peers,
        "num_pending_channels": r.num_pending_channels,
        "num_active_channels": r.num_active_channels,
        "num_inactive_channels": r.num_inactive_channels,
        "version": r.version,
        "blockheight": r.blockheight,
        "network": r.network,
        "binding": r.binding.iter().map(|b| serde_json::json!({
            "address": b.address, "port": b.port,
        })).collect::<Vec<_>>(),
    });
    if let Some(w) = &r.warning_bitcoind_sync {
        v["warning_bitcoind_sync"] = w.clone().into();
    }
    if let Some(w) = &r.warning_lightningd_sync {
        v["warning_lightningd_sync"] = w.clone().into();
    }
    v
}

/// What `node invoice` prints.
pub fn invoice_json(r: &skylight_proto::cln::InvoiceResponse) -> serde_json::Value {
    serde_json::json!({
        "bolt11": r.bolt11,
        "payment_hash": hex::encode(&r.payment_hash),
        "payment_secret": hex::encode(&r.payment_secret),
        "expires_at": r.expires_at,
        "created_index": r.created_index,
    })
}

/// An amount as typed: `any`, or millisatoshis.
pub fn amount_or_any(text: &str) -> Result<skylight_proto::cln::AmountOrAny> {
    use skylight_proto::cln::{Amount, AmountOrAny, amount_or_any::Value};
    let value = if text == "any" {
        Value::Any(true)
    } else {
        let msat = text
            .trim_end_matches("msat")
            .parse()
            .with_context(|| format!("{text:?} is not an amount in msat (or \"any\")"))?;
        Value::Amount(Amount { msat })
    };
    Ok(AmountOrAny { value: Some(value) })
}

/// What `node listfunds` prints.
pub fn listfunds_json(r: &skylight_proto::cln::ListfundsResponse) -> serde_json::Value {
    use skylight_proto::cln::listfunds_outputs::ListfundsOutputsStatus;
    // CLN's gRPC carries txids in the order they are displayed.
    let txid = |b: &[u8]| hex::encode(b);
    let outputs: Vec<_> = r
        .outputs
        .iter()
        .map(|o| {
            let status = ListfundsOutputsStatus::try_from(o.status)
                .map(|s| s.as_str_name().to_ascii_lowercase())
                .unwrap_or_default();
            serde_json::json!({
                "txid": txid(&o.txid),
                "output": o.output,
                "amount_msat": o.amount_msat.as_ref().map_or(0, |a| a.msat),
                "address": o.address,
                "status": status,
                "blockheight": o.blockheight,
            })
        })
        .collect();
    let channels: Vec<_> = r
        .channels
        .iter()
        .map(|c| {
            serde_json::json!({
                "peer_id": hex::encode(&c.peer_id),
                "our_amount_msat": c.our_amount_msat.as_ref().map_or(0, |a| a.msat),
                "amount_msat": c.amount_msat.as_ref().map_or(0, |a| a.msat),
                "funding_txid": txid(&c.funding_txid),
                "funding_output": c.funding_output,
                "connected": c.connected,
                "state": skylight_proto::cln::ChannelState::try_from(c.state)
                    .map(|s| s.as_str_name().to_string())
                    .unwrap_or_default(),
                "short_channel_id": c.short_channel_id,
                "channel_id": hex::encode(&c.channel_id),
            })
        })
        .collect();
    serde_json::json!({ "outputs": outputs, "channels": channels })
}

/// What `node listpeerchannels` prints.
pub fn listpeerchannels_json(
    r: &skylight_proto::cln::ListpeerchannelsResponse,
) -> serde_json::Value {
    let msat = |a: &Option<skylight_proto::cln::Amount>| a.as_ref().map_or(0, |a| a.msat);
    let channels: Vec<_> = r
        .channels
        .iter()
        .map(|c| {
            serde_json::json!({
                "peer_id": hex::encode(&c.peer_id),
                "peer_connected": c.peer_connected,
                "state": skylight_proto::cln::ChannelState::try_from(c.state)
                    .map(|s| s.as_str_name().to_string())
                    .unwrap_or_default(),
                "short_channel_id": c.short_channel_id,
                "channel_id": c.channel_id.as_ref().map(hex::encode),
                "funding_txid": c.funding_txid.as_ref().map(hex::encode),
                "funding_outnum": c.funding_outnum,
                "opener": if c.opener == 0 { "local" } else { "remote" },
                "to_us_msat": msat(&c.to_us_msat),
                "total_msat": msat(&c.total_msat),
                "spendable_msat": msat(&c.spendable_msat),
                "receivable_msat": msat(&c.receivable_msat),
                "status": c.status,
                "htlcs": c.htlcs.iter().map(|h| serde_json::json!({
                    "direction": if h.direction == 0 { "in" } else { "out" },
                    "id": h.id,
                    "amount_msat": msat(&h.amount_msat),
                    "expiry": h.expiry,
                    "payment_hash": hex::encode(&h.payment_hash),
                    "state": skylight_proto::cln::HtlcState::try_from(h.state)
                        .map(|s| s.as_str_name().to_string())
                        .unwrap_or_default(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({ "channels": channels })
}

/// What `node listpeers` prints.
pub fn listpeers_json(r: &skylight_proto::cln::ListpeersResponse) -> serde_json::Value {
    let peers: Vec<_> = r
        .peers
        .iter()
        .map(|p| {
            serde_json::json!({
                "id": hex::encode(&p.id),
                "connected": p.connected,
                "num_channels": p.num_channels,
                "netaddr": p.netaddr,
                "remote_addr": p.remote_addr,
                "features": p.features.as_ref().map(hex::encode),
            })
        })
        .collect();
    serde_json::json!({ "peers": peers })
}

/// What `node listpays` prints.
pub fn listpays_json(r: &skylight_proto::cln::ListpaysResponse) -> serde_json::Value {
    use skylight_proto::cln::listpays_pays::ListpaysPaysStatus;
    let pays: Vec<_> = r
        .pays
        .iter()
        .map(|p| {
            serde_json::json!({
                "payment_hash": hex::encode(&p.payment_hash),
                "status": ListpaysPaysStatus::try_from(p.status)
                    .map(|s| s.as_str_name().to_ascii_lowercase())
                    .unwrap_or_default(),
                "destination": p.destination.as_ref().map(hex::encode),
                "bolt11": p.bolt11,
                "amount_msat": p.amount_msat.as_ref().map(|a| a.msat),
                "amount_sent_msat": p.amount_sent_msat.as_ref().map(|a| a.msat),
                "preimage": p.preimage.as_ref().map(hex::encode),
                "created_index": p.created_index,
            })
        })
        .collect();
    serde_json::json!({ "pays": pays })
}

/// What `node listinvoices` prints.
pub fn listinvoices_json(r: &skylight_proto::cln::ListinvoicesResponse) -> serde_json::Value {
    use skylight_proto::cln::listinvoices_invoices::ListinvoicesInvoicesStatus;
    let invoices: Vec<_> = r
        .invoices
        .iter()
        .map(|i| {
            serde_json::json!({
                "label": i.label,
                "status": ListinvoicesInvoicesStatus::try_from(i.status)
                    .map(|s| s.as_str_name().to_ascii_lowercase())
                    .unwrap_or_default(),
                "payment_hash": hex::encode(&i.payment_hash),
                "amount_msat": i.amount_msat.as_ref().map(|a| a.msat),
                "amount_received_msat": i.amount_received_msat.as_ref().map(|a| a.msat),
                "bolt11": i.bolt11,
                "pay_index": i.pay_index,
                "paid_at": i.paid_at,
                "created_index": i.created_index,
            })
        })
        .collect();
    serde_json::json!({ "invoices": invoices })
}
