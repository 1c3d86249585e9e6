//! `signer-cli node …`: calls to the node API, each signed with this device's key.

use anyhow::{Context, Result};
use clap::Subcommand;
use skylight_client::device_dir::DataDir;

use crate::device_context;

#[derive(Subcommand)]
pub enum NodeCall {
    /// The node's id, chain height, peers and channels (JSON).
    Getinfo,
    /// Make a BOLT11 invoice, signed by the node's signer (JSON).
    Invoice {
        /// Amount in msat, or `any`.
        #[arg(long)]
        amount_msat: String,
        /// A label naming the invoice (unique).
        #[arg(long)]
        label: String,
        /// The description the payer sees.
        #[arg(long, default_value = "")]
        description: String,
        /// Seconds until it expires (default: a week).
        #[arg(long)]
        expiry: Option<u64>,
        /// The preimage to use (64 hex characters) instead of one the node derives.
        #[arg(long)]
        preimage: Option<String>,
    },
    /// A new address of the node's on-chain wallet (JSON).
    Newaddr,
    /// The wallet's outputs and the node's channels (JSON).
    Listfunds {
        /// Include spent outputs.
        #[arg(long)]
        spent: bool,
    },
    /// Open a channel to a connected peer, funded from the wallet (JSON).
    Fundchannel {
        /// The peer's node id.
        id: String,
        /// Channel size in satoshis.
        amount_sat: u64,
        /// Fee rate for the funding transaction, sat per 1000 weight units.
        #[arg(long)]
        feerate_perkw: Option<u32>,
        /// Announce the channel for forwarding.
        #[arg(long)]
        announce: bool,
    },
    /// The peers the node is connected to or has channels with (JSON).
    Listpeers {
        /// Only this peer (node id).
        id: Option<String>,
    },
    /// The node's channels (JSON).
    Listpeerchannels,
    /// Pay a BOLT11 invoice; the signer approves it because this call, signed by this
    /// device, names it (JSON).
    Pay {
        /// The invoice.
        bolt11: String,
        /// Amount in msat, for an invoice that names none.
        #[arg(long)]
        amount_msat: Option<u64>,
        /// How long to keep trying, in seconds (route-finding included; the node's default
        /// is 60).
        #[arg(long)]
        retry_for: Option<u32>,
    },
    /// Outgoing payments (JSON).
    Listpays,
    /// Close a channel: ID is the peer's node id, the channel id or the short channel id
    /// (JSON).
    Close {
        /// Which channel.
        id: String,
        /// Force (unilateral) close: our commitment is broadcast unless a cooperative close
        /// completes within a second (CLN's `unilateraltimeout` of 1); our funds come back
        /// to the wallet after the channel's delay.
        #[arg(long)]
        force: bool,
    },
    /// Pay on-chain from the node's wallet (JSON).
    Withdraw {
        /// Destination address.
        destination: String,
        /// Amount in satoshis.
        amount_sat: u64,
        /// Fee rate, sat per 1000 weight units.
        #[arg(long)]
        feerate_perkw: Option<u32>,
    },
    /// Invoices and whether they were paid (JSON).
    Listinvoices,
    /// Connect to a Lightning peer: `NODE_ID@HOST:PORT` (JSON).
    Connect {
        /// The peer, `NODE_ID@HOST:PORT`.
        peer: String,
    },
}

/// Runs one node call and prints its answer as JSON.
/// With `direct`, the node at that URI is called itself, with no scheduler.
pub async fn node_call(dir: &DataDir, direct: Option<&str>, call: NodeCall) -> Result<()> {
    use skylight_client::signed_request::RequestSigner;
    let device =
        skylight_client::creds::identity(&skylight_client::creds::load(&dir.credentials())?);
    let rune = device_rune(dir)?;
    let signer = RequestSigner::new(&device.key_pem)?.with_rune(&rune);
    let mut node = match direct {
        Some(uri) => skylight_client::node::connect_direct(uri, &device).await?,
        None => {
            let (uri, ..) = device_context(dir)?;
            skylight_client::node::connect(&uri, &device).await?
        }
    };
    let refused = |rpc| move |status| skylight_client::tls::Refused { rpc, status };
    let out = match call {
        NodeCall::Getinfo => {
            let r = node
                .getinfo(signer.sign(skylight_proto::cln::GetinfoRequest {})?)
                .await
                .map_err(refused("Getinfo"))?;
            crate::print::getinfo_json(r.get_ref())
        }
        NodeCall::Invoice {
            amount_msat,
            label,
            description,
            expiry,
            preimage,
        } => {
            let preimage = match preimage {
                Some(h) => Some(
                    hex::decode(h.trim())
                        .ok()
                        .filter(|b| b.len() == 32)
                        .context("--preimage must be 64 hex characters")?,
                ),
                None => None,
            };
            let req = skylight_proto::cln::InvoiceRequest {
                amount_msat: Some(crate::print::amount_or_any(&amount_msat)?),
                label,
                description,
                expiry,
                preimage,
                ..Default::default()
            };
            let r = node
                .invoice(signer.sign(req)?)
                .await
                .map_err(refused("Invoice"))?;
            crate::print::invoice_json(r.get_ref())
        }
        NodeCall::Newaddr => {
            let r = node
                .new_addr(signer.sign(skylight_proto::cln::NewaddrRequest::default())?)
                .await
                .map_err(refused("NewAddr"))?;
            serde_json::json!({ "bech32": r.get_ref().bech32 })
        }
        NodeCall::Listfunds { spent } => {
            let req = skylight_proto::cln::ListfundsRequest { spent: Some(spent) };
            let r = node
                .list_funds(signer.sign(req)?)
                .await
                .map_err(refused("ListFunds"))?;
            crate::print::listfunds_json(r.get_ref())
        }
        NodeCall::Fundchannel {
            id,
            amount_sat,
            feerate_perkw,
            announce,
        } => {
            use skylight_proto::cln::{Amount, AmountOrAll, Feerate, amount_or_all, feerate};
            let req = skylight_proto::cln::FundchannelRequest {
                id: hex::decode(id.trim())
                    .ok()
                    .filter(|b| b.len() == 33)
                    .context("the peer id must be 66 hex characters")?,
                amount: Some(AmountOrAll {
                    value: Some(amount_or_all::Value::Amount(Amount {
                        msat: amount_sat * 1000,
                    })),
                }),
                feerate: feerate_perkw.map(|r| Feerate {
                    style: Some(feerate::Style::Perkw(r)),
                }),
                announce: Some(announce),
                ..Default::default()
            };
            let r = node
                .fund_channel(signer.sign(req)?)
                .await
                .map_err(refused("FundChannel"))?;
            let r = r.get_ref();
            serde_json::json!({
                "txid": hex::encode(&r.txid),
                "outnum": r.outnum,
                "channel_id": hex::encode(&r.channel_id),
                "tx": hex::encode(&r.tx),
            })
        }
        NodeCall::Listpeers { id } => {
            let id = id
                .map(|id| hex::decode(&id).context("the peer id must be hex"))
                .transpose()?;
            let r = node
                .list_peers(signer.sign(skylight_proto::cln::ListpeersRequest { id, level: None })?)
                .await
                .map_err(refused("ListPeers"))?;
            crate::print::listpeers_json(r.get_ref())
        }
        NodeCall::Listpeerchannels => {
            let r = node
                .list_peer_channels(
                    signer.sign(skylight_proto::cln::ListpeerchannelsRequest::default())?,
                )
                .await
                .map_err(refused("ListPeerChannels"))?;
            crate::print::listpeerchannels_json(r.get_ref())
        }
        NodeCall::Pay {
            bolt11,
            amount_msat,
            retry_for,
        } => {
            let req = skylight_proto::cln::PayRequest {
                bolt11,
                amount_msat: amount_msat.map(|msat| skylight_proto::cln::Amount { msat }),
                retry_for,
                ..Default::default()
            };
            let r = node.pay(signer.sign(req)?).await.map_err(refused("Pay"))?;
            let r = r.get_ref();
            serde_json::json!({
                "payment_hash": hex::encode(&r.payment_hash),
                "payment_preimage": hex::encode(&r.payment_preimage),
                "amount_msat": r.amount_msat.as_ref().map_or(0, |a| a.msat),
                "amount_sent_msat": r.amount_sent_msat.as_ref().map_or(0, |a| a.msat),
                "status": "complete",
            })
        }
        NodeCall::Close { id, force } => {
            let req = skylight_proto::cln::CloseRequest {
                id,
                unilateraltimeout: force.then_some(1),
                ..Default::default()
            };
            let r = node
                .close(signer.sign(req)?)
                .await
                .map_err(refused("Close"))?;
            let r = r.get_ref();
            serde_json::json!({
                "type": match skylight_proto::cln::close_response::CloseType::try_from(r.item_type) {
                    Ok(skylight_proto::cln::close_response::CloseType::Mutual) => "mutual",
                    Ok(skylight_proto::cln::close_response::CloseType::Unilateral) => "unilateral",
                    Ok(skylight_proto::cln::close_response::CloseType::Unopened) => "unopened",
                    Err(_) => "unknown",
                },
                "txids": r.txids.iter().map(hex::encode).collect::<Vec<_>>(),
            })
        }
        NodeCall::Withdraw {
            destination,
            amount_sat,
            feerate_perkw,
        } => {
            use skylight_proto::cln::{Amount, AmountOrAll, Feerate, amount_or_all, feerate};
            let req = skylight_proto::cln::WithdrawRequest {
                destination,
                satoshi: Some(AmountOrAll {
                    value: Some(amount_or_all::Value::Amount(Amount {
                        msat: amount_sat * 1000,
                    })),
                }),
                feerate: feerate_perkw.map(|r| Feerate {
                    style: Some(feerate::Style::Perkw(r)),
                }),
                ..Default::default()
            };
            let r = node
                .withdraw(signer.sign(req)?)
                .await
                .map_err(refused("Withdraw"))?;
            serde_json::json!({ "txid": hex::encode(&r.get_ref().txid) })
        }
        NodeCall::Listpays => {
            let r = node
                .list_pays(signer.sign(skylight_proto::cln::ListpaysRequest::default())?)
                .await
                .map_err(refused("ListPays"))?;
            crate::print::listpays_json(r.get_ref())
        }
        NodeCall::Listinvoices => {
            let r = node
                .list_invoices(signer.sign(skylight_proto::cln::ListinvoicesRequest::default())?)
                .await
                .map_err(refused("ListInvoices"))?;
            crate::print::listinvoices_json(r.get_ref())
        }
        NodeCall::Connect { peer } => {
            let req = skylight_proto::cln::ConnectRequest {
                id: peer,
                ..Default::default()
            };
            let r = node
                .connect_peer(signer.sign(req)?)
                .await
                .map_err(refused("ConnectPeer"))?;
            serde_json::json!({
                "id": hex::encode(&r.get_ref().id),
                "direction": if r.get_ref().direction == 1 { "out" } else { "in" },
            })
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// The device's rune from its credentials. Credentials saved before runes were minted have
/// none: this device holds the seed, so it mints it now and keeps it.
pub fn device_rune(dir: &DataDir) -> Result<String> {
    use skylight_client::creds;
    let mut device = creds::load(&dir.credentials())?;
    if device.rune.is_empty() {
        crate::mint_rune(dir, &mut device)?;
        creds::save(&dir.credentials(), &device)?;
    }
    Ok(device.rune)
}
