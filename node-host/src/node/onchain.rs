//! The on-chain wallet: addresses, funds, withdrawals, and the fee rates they pay.

use bdk_wallet::chain::ChainPosition;
use lightning_signer::bitcoin::{Address, Amount, OutPoint, ScriptBuf, Transaction};
use lightning_signer::lightning::chain::chaininterface::{
    BroadcasterInterface, ConfirmationTarget, FeeEstimator,
};

use super::ldk::{FEE_FLOOR, FeeRates};
use super::channels::channel_list;
use super::{Channel, Node, NodeError};

/// The fee rate a spend asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeeRate {
    /// Sat per 1000 weight units.
    PerKw(u32),
    /// Cheap: confirmation within a day or so.
    Slow,
    /// Within a few blocks.
    #[default]
    Normal,
    /// In the next blocks.
    Urgent,
}

impl FeeRate {
    /// In sat per 1000 weight units, never below LDK's floor: given outright, or read from
    /// the fee table for its confirmation target.
    pub(super) fn sat_per_kw(self, fees: &FeeRates) -> u32 {
        let target = |t| fees.get_est_sat_per_1000_weight(t);
        match self {
            FeeRate::PerKw(r) => r,
            FeeRate::Slow => target(ConfirmationTarget::ChannelCloseMinimum),
            FeeRate::Normal => target(ConfirmationTarget::NonAnchorChannelFee),
            FeeRate::Urgent => target(ConfirmationTarget::UrgentOnChainSweep),
        }
        .max(FEE_FLOOR)
    }
}

/// One of the wallet's outputs.
#[derive(Debug, Clone)]
pub struct WalletOutput {
    /// Where it is.
    pub outpoint: OutPoint,
    /// What it holds.
    pub value: Amount,
    /// Its script.
    pub script_pubkey: ScriptBuf,
    /// Its address, when the script has one.
    pub address: Option<Address>,
    /// The height of the block that confirmed it, if one has.
    pub confirmed_at: Option<u32>,
    /// Whether a transaction of ours spends it.
    pub spent: bool,
}

/// The wallet's outputs and the node's channels.
#[derive(Debug, Clone)]
pub struct Funds {
    /// The wallet's outputs.
    pub outputs: Vec<WalletOutput>,
    /// The channels.
    pub channels: Vec<Channel>,
    /// The channels closed on chain, their outputs still being claimed.
    pub resolving: Vec<super::Resolving>,
}

impl Node {
    /// A fresh address of the signer's wallet (P2WPKH), remembered before it is handed out.
    pub async fn new_address(&self) -> Result<Address, NodeError> {
        let running = self.started("a new address").await?;
        running
            .wallet
            .new_address()
            .map_err(|e| NodeError::Internal(e.to_string()))
    }

    /// The wallet's outputs (spent ones too if `spent`) and the node's channels.
    pub async fn funds(&self, spent: bool) -> Result<Funds, NodeError> {
        let running = self.started("the funds").await?;
        let network = running.wallet.network();
        // Outputs and channels in one call on LDK's runtime, so a listing taken while a
        // channel is being funded is read at one moment, as near as the two allow.
        let (outputs, channels, resolving) = self
            .on_ldk(move || {
                let channels = channel_list(&running);
                let open: Vec<_> = channels.iter().map(|c| c.details.channel_id).collect();
                let resolving = super::resolving::resolving_list(&running, &open);
                (running.wallet.outputs(spent), channels, resolving)
            })
            .await?;
        let outputs = outputs
            .into_iter()
            .map(|o| WalletOutput {
                outpoint: o.outpoint,
                value: o.txout.value,
                address: Address::from_script(&o.txout.script_pubkey, network).ok(),
                script_pubkey: o.txout.script_pubkey,
                confirmed_at: match o.chain_position {
                    ChainPosition::Confirmed { anchor, .. } => Some(anchor.block_id.height),
                    ChainPosition::Unconfirmed { .. } => None,
                },
                spent: o.is_spent,
            })
            .collect();
        Ok(Funds {
            outputs,
            channels,
            resolving,
        })
    }

    /// Pays `amount` on chain to `destination` from the wallet. The signer signs only if a
    /// Withdraw request signed by one of the tenant's devices names this destination and
    /// amount; the signed transaction is broadcast and returned.
    pub async fn withdraw(
        &self,
        destination: Address,
        amount: Amount,
        fee: FeeRate,
    ) -> Result<Transaction, NodeError> {
        let running = self.with_signer("withdrawal").await?;
        let sat_per_kw = fee.sat_per_kw(&running.fees);
        let script = destination.script_pubkey();
        // A faulty node-host (tests only) pays the destination twice on one request.
        let copies = if crate::signer_link::faults::is_on_for("double-withdraw", "") {
            2
        } else {
            1
        };
        let recipients = vec![(script, amount); copies];
        let r = running.clone();
        let signed = self
            .on_ldk(move || -> Result<_, NodeError> {
                let psbt = r
                    .wallet
                    .build_payments(&recipients, sat_per_kw, &[])
                    .map_err(|e| {
                        NodeError::Precondition(format!("cannot pay from the wallet: {e}"))
                    })?;
                let inputs = r
                    .wallet
                    .inputs_of(&psbt)
                    .ok_or_else(|| NodeError::Internal("an input is not the wallet's".into()))?;
                r.ldk
                    .keys
                    .sign_wallet_spend(psbt, &inputs)
                    .map_err(|reason| NodeError::Refused {
                        what: "withdrawal".into(),
                        reason,
                    })
            })
            .await??;
        running.wallet.sent(signed.clone());
        running.broadcaster.broadcast_transactions(&[&signed]);
        Ok(signed)
    }
}
