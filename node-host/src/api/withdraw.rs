//! `Withdraw`: pay on-chain from the wallet. The signer signs only if a Withdraw request
//! signed by one of the tenant's devices names this destination and amount.

use std::str::FromStr;

use lightning_signer::bitcoin::{Address, Amount};
use lightning_signer::bitcoin::consensus::encode::serialize;
use skylight_proto::cln::{self as pb, amount_or_all};

use super::Ctx;
use super::convert::{fee_rate, txid_bytes};
use crate::node::NodeError;

/// Answers `Withdraw`.
pub async fn handle(
    ctx: &Ctx<'_>,
    req: pb::WithdrawRequest,
) -> Result<pb::WithdrawResponse, NodeError> {
    let invalid = |m: &str| NodeError::Invalid(m.to_string());
    let network = ctx.node.network();
    let destination = Address::from_str(req.destination.trim())
        .map_err(|e| invalid(&format!("destination is not an address: {e}")))?
        .require_network(network)
        .map_err(|_| invalid(&format!("destination is not a {network} address")))?;
    let amount = match req.satoshi.as_ref().and_then(|a| a.value.as_ref()) {
        Some(amount_or_all::Value::Amount(a)) if a.msat % 1000 == 0 && a.msat > 0 => {
            Amount::from_sat(a.msat / 1000)
        }
        Some(amount_or_all::Value::Amount(_)) => {
            return Err(invalid(
                "satoshi must be a whole number of satoshis, above 0",
            ));
        }
        Some(amount_or_all::Value::All(_)) => {
            return Err(invalid("\"all\" is not supported yet: give an amount"));
        }
        None => return Err(invalid("satoshi is required")),
    };
    if !req.utxos.is_empty() {
        return Err(invalid("choosing utxos is not supported"));
    }
    let signed = ctx
        .node
        .withdraw(destination, amount, fee_rate(req.feerate.as_ref()))
        .await?;
    Ok(pb::WithdrawResponse {
        tx: serialize(&signed),
        txid: txid_bytes(&signed.compute_txid()),
        psbt: String::new(),
    })
}
