//! `Withdraw`: pay on-chain from the wallet. The signer signs only if a Withdraw request
//! signed by one of the tenant's devices names this destination and amount.

use std::str::FromStr;

use lightning_signer::bitcoin::consensus::encode::serialize;
use lightning_signer::bitcoin::{Address, Amount};
use lightning_signer::lightning::chain::chaininterface::BroadcasterInterface;
use skylight_proto::cln::{self as pb, amount_or_all};

use super::{ApiError, ClnService, sat_per_kw, txid_bytes};

/// Answers the call (the caller's device and signature were checked before it).
pub async fn withdraw(
    api: &ClnService,
    req: pb::WithdrawRequest,
) -> Result<pb::WithdrawResponse, ApiError> {
    let invalid = |m: String| ApiError::Invalid(m);
    let address = Address::from_str(req.destination.trim())
        .map_err(|e| invalid(format!("destination is not an address: {e}")))?
        .require_network(api.network)
        .map_err(|_| invalid(format!("destination is not a {} address", api.network)))?;
    let amount = match req.satoshi.as_ref().and_then(|a| a.value.as_ref()) {
        Some(amount_or_all::Value::Amount(a)) if a.msat % 1000 == 0 && a.msat > 0 => {
            Amount::from_sat(a.msat / 1000)
        }
        Some(amount_or_all::Value::Amount(_)) => {
            return Err(invalid(
                "satoshi must be a whole number of satoshis, above 0".into(),
            ));
        }
        Some(amount_or_all::Value::All(_)) => {
            return Err(invalid(
                "\"all\" is not supported yet: give an amount".into(),
            ));
        }
        None => return Err(invalid("satoshi is required".into())),
    };
    if !req.utxos.is_empty() {
        return Err(invalid("choosing utxos is not supported".into()));
    }
    let running = api.node_with_signer("withdrawal").await?;
    let sat_per_kw = sat_per_kw(req.feerate.as_ref(), &running.fees);
    let script = address.script_pubkey();
    let r = running.clone();
    let signed = api
        .on_ldk(move || -> Result<_, ApiError> {
            let psbt = r
                .wallet
                .build_payment(script, amount, sat_per_kw, &[])
                .map_err(|e| ApiError::Precondition(format!("cannot pay from the wallet: {e}")))?;
            let inputs = r
                .wallet
                .inputs_of(&psbt)
                .ok_or_else(|| ApiError::Internal("an input is not the wallet's".into()))?;
            r.ldk
                .keys
                .sign_wallet_spend(psbt, &inputs)
                .map_err(|reason| ApiError::Refused {
                    what: "withdrawal".into(),
                    reason,
                })
        })
        .await??;
    running.wallet.sent(signed.clone());
    running.broadcaster.broadcast_transactions(&[&signed]);
    Ok(pb::WithdrawResponse {
        tx: serialize(&signed),
        txid: txid_bytes(&signed.compute_txid()),
        psbt: String::new(),
    })
}
