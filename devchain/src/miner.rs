//! Block assembly: a real regtest block on top of the tip.

use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash;
use bitcoin::opcodes::all::OP_RETURN;
use bitcoin::script::{Builder, PushBytesBuf};
use bitcoin::transaction::Version as TxVersion;
use bitcoin::{
    Amount, Block, CompactTarget, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxMerkleNode,
    TxOut, Witness, absolute,
};

use crate::chain::Chain;
use crate::params::*;

/// The witness reserved value every coinbase carries (BIP141).
const WITNESS_RESERVED: [u8; 32] = [0; 32];

/// Builds and solves a block on the tip paying subsidy and `fees` to `payout`, holding
/// `txs` (already validated, parents first). `now` is the wall clock in unix seconds.
pub fn build_block(
    chain: &Chain,
    txs: Vec<Transaction>,
    fees: Amount,
    payout: ScriptBuf,
    now: u32,
) -> Block {
    let (tip, tip_height) = chain.tip();
    let height = tip_height + 1;

    // BIP34: the height first in the coinbase script. Then a random extra nonce: it keeps
    // the script above the 2-byte minimum, and makes every block unique, so a block mined
    // again on the same parent after `invalidateblock` is a real fork, never the invalidated
    // block itself.
    let mut extra_nonce = [0u8; 8];
    getrandom::getrandom(&mut extra_nonce).expect("the operating system's random source failed");
    let script_sig = Builder::new()
        .push_int(height as i64)
        .push_slice(extra_nonce)
        .into_script();
    let coinbase = Transaction {
        version: TxVersion::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig,
            sequence: Sequence::MAX,
            witness: Witness::from_slice(&[WITNESS_RESERVED]),
        }],
        output: vec![TxOut {
            value: subsidy(height) + fees,
            script_pubkey: payout,
        }],
    };
    let mut txdata = Vec::with_capacity(txs.len() + 1);
    txdata.push(coinbase);
    txdata.extend(txs);

    // Time strictly above the median time past, so later blocks are valid however fast they
    // are mined, and a real date, since Lightning uses time-based locktimes.
    let mtp = chain.median_time_past(tip_height);
    let time = now.max(mtp + 1);

    let mut block = Block {
        header: Header {
            version: Version::from_consensus(BLOCK_VERSION),
            prev_blockhash: tip,
            merkle_root: TxMerkleNode::all_zeros(),
            time,
            bits: CompactTarget::from_consensus(REGTEST_BITS),
            nonce: 0,
        },
        txdata,
    };

    // BIP141 witness commitment, always present as bitcoind's miner does.
    let witness_root = block.witness_root().expect("a block with a coinbase");
    let commitment = Block::compute_witness_commitment(&witness_root, &WITNESS_RESERVED);
    let mut data = PushBytesBuf::from([0xaa, 0x21, 0xa9, 0xed]);
    data.extend_from_slice(commitment.as_byte_array())
        .expect("36 bytes fit a push");
    block.txdata[0].output.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: Builder::new()
            .push_opcode(OP_RETURN)
            .push_slice(data)
            .into_script(),
    });
    block.header.merkle_root = block
        .compute_merkle_root()
        .expect("a block with a coinbase");

    // Regtest's target is half the hash space: a handful of tries at most.
    let target = block.header.target();
    while block.header.validate_pow(target).is_err() {
        block.header.nonce = block.header.nonce.wrapping_add(1);
        if block.header.nonce == 0 {
            block.header.time += 1;
        }
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mined_blocks_are_valid_regtest_blocks() {
        let mut chain = Chain::new();
        let payout = ScriptBuf::new_op_return([1u8; 4]);
        for _ in 0..20 {
            let block = build_block(&chain, vec![], Amount::ZERO, payout.clone(), 1_700_000_000);
            assert!(block.check_merkle_root());
            assert!(block.check_witness_commitment());
            assert!(block.header.validate_pow(block.header.target()).is_ok());
            // BIP34 as bitcoind checks it: the script starts with `CScript() << height`
            // (OP_1..OP_16 for small heights, as bitcoind's own miner writes them).
            let expected = Builder::new()
                .push_int(chain.height() as i64 + 1)
                .into_script();
            assert!(
                block.txdata[0].input[0]
                    .script_sig
                    .as_bytes()
                    .starts_with(expected.as_bytes())
            );
            assert!(block.header.time > chain.median_time_past(chain.height()));
            chain.connect(block).unwrap();
        }
        assert_eq!(chain.height(), 20);
        // Two blocks on the same parent, same time and payout, still differ.
        let a = build_block(&chain, vec![], Amount::ZERO, payout.clone(), 1_700_000_000);
        let b = build_block(&chain, vec![], Amount::ZERO, payout.clone(), 1_700_000_000);
        assert_ne!(a.block_hash(), b.block_hash());
        // Past 16 the height is a data push, which rust-bitcoin's parser reads back.
        let tip = chain.entry(&chain.tip().0).unwrap();
        assert_eq!(tip.block.bip34_block_height().unwrap(), 20);
    }
}
