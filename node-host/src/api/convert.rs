//! The node's terms in CLN's: channel states, txids, amounts.

use lightning_signer::bitcoin::Txid;
use lightning_signer::bitcoin::hashes::Hash;
use lightning_signer::lightning::ln::channel_state::{ChannelDetails, ChannelShutdownState};
use skylight_proto::cln as pb;

use crate::node::FeeRate;

/// A channel's state in CLN's terms.
pub fn channel_state(c: &ChannelDetails) -> pb::ChannelState {
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
pub fn txid_bytes(txid: &Txid) -> Vec<u8> {
    let mut b = txid.to_byte_array().to_vec();
    b.reverse();
    b
}

/// An amount in msat.
pub fn msat(msat: u64) -> Option<pb::Amount> {
    Some(pb::Amount { msat })
}

/// The fee rate a call asks for: given outright, or one of CLN's names.
pub fn fee_rate(feerate: Option<&pb::Feerate>) -> FeeRate {
    use pb::feerate::Style;
    match feerate.and_then(|f| f.style.as_ref()) {
        Some(Style::Perkw(r)) => FeeRate::PerKw(*r),
        Some(Style::Perkb(r)) => FeeRate::PerKw(r / 4),
        Some(Style::Slow(_)) => FeeRate::Slow,
        Some(Style::Urgent(_)) => FeeRate::Urgent,
        Some(Style::Normal(_)) | None => FeeRate::Normal,
    }
}
