//! Regtest consensus and relay parameters, as bitcoind uses them.

use bitcoin::Amount;

/// Blocks before a coinbase output may be spent.
pub const COINBASE_MATURITY: u32 = 100;
/// Regtest halves the subsidy every 150 blocks.
pub const HALVING_INTERVAL: u32 = 150;
/// Regtest's proof-of-work limit, in compact form; regtest never retargets.
pub const REGTEST_BITS: u32 = 0x207f_ffff;
/// The block version bitcoind mines (BIP9 top bits, no signalling).
pub const BLOCK_VERSION: i32 = 0x2000_0000;
/// Consensus block weight limit.
pub const MAX_BLOCK_WEIGHT: u64 = 4_000_000;
/// Standardness limit on a transaction's weight.
pub const MAX_STANDARD_TX_WEIGHT: u64 = 400_000;
/// Default minimum relay fee, sat per 1000 virtual bytes (bitcoind's 0.00001 BTC/kvB).
pub const DEFAULT_MIN_RELAY_FEE_SAT_PER_KVB: u64 = 1_000;
/// Default answer to `estimatesmartfee`, sat per 1000 virtual bytes (2 sat/vB).
pub const DEFAULT_FEERATE_SAT_PER_KVB: u64 = 2_000;
/// BIP68: sequence numbers with this bit set carry no relative lock.
pub const SEQUENCE_LOCKTIME_DISABLE_FLAG: u32 = 1 << 31;
/// BIP68: with this bit set the lock is in units of 512 seconds, else blocks.
pub const SEQUENCE_LOCKTIME_TYPE_FLAG: u32 = 1 << 22;
/// BIP68: the bits holding the lock value.
pub const SEQUENCE_LOCKTIME_MASK: u32 = 0x0000_ffff;
/// BIP68 time locks are in units of 2^9 seconds.
pub const SEQUENCE_LOCKTIME_GRANULARITY: u32 = 9;
/// Locktimes below this are heights, at or above it unix times.
pub const LOCKTIME_THRESHOLD: u32 = 500_000_000;

/// The block subsidy at `height`.
pub fn subsidy(height: u32) -> Amount {
    let halvings = height / HALVING_INTERVAL;
    if halvings >= 64 {
        return Amount::ZERO;
    }
    Amount::from_sat((50 * 100_000_000) >> halvings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subsidy_halves_every_150_blocks() {
        assert_eq!(subsidy(0), Amount::from_btc(50.0).unwrap());
        assert_eq!(subsidy(149), Amount::from_btc(50.0).unwrap());
        assert_eq!(subsidy(150), Amount::from_btc(25.0).unwrap());
        assert_eq!(subsidy(300), Amount::from_btc(12.5).unwrap());
        assert_eq!(subsidy(150 * 64), Amount::ZERO);
    }
}
