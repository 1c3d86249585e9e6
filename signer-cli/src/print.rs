//! What `signer-cli node …` prints: each answer as JSON, and amounts as typed.

use anyhow::{Context, Result};

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
        // CLN's names for the address types.
        "address": r.address.iter().map(|a| serde_json::json!({
            "type": match a.item_type {
                1 => "ipv4",
                2 => "ipv6",
                3 => "torv2",
                4 => "torv3",
                _ => "dns",
            },
            "address": a.address, "port": a.port,
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
