//! The chain, mempool and faucet without RPC.

use bitcoin::{Address, Amount, Network, OutPoint, ScriptBuf};

use super::*;

fn address() -> Address {
    let secret = SecretKey::new(&mut bitcoin::secp256k1::rand::thread_rng());
    let pk = bitcoin::CompressedPublicKey(secret.public_key(&bitcoin::secp256k1::Secp256k1::new()));
    Address::p2wpkh(&pk, Network::Regtest)
}

fn open(dir: &std::path::Path, initial_blocks: u32) -> DevChain {
    DevChain::open(
        dir,
        Config {
            initial_blocks,
            ..Config::default()
        },
    )
    .unwrap()
}

#[test]
fn a_reopened_chain_keeps_its_tip_utxos_mempool_and_faucet() {
    let dir = tempfile::tempdir().unwrap();
    let (tip, utxos, pooled, faucet) = {
        let chain = open(dir.path(), 101);
        let to = address();
        let txid = chain
            .faucet_pay(to.script_pubkey(), Amount::from_btc(2.0).unwrap())
            .unwrap();
        chain.mine(1, &address().script_pubkey()).unwrap();
        let waiting = chain
            .faucet_pay(address().script_pubkey(), Amount::from_btc(1.0).unwrap())
            .unwrap();
        chain.flush().unwrap();
        let state = chain.lock();
        let utxos: std::collections::BTreeMap<OutPoint, Amount> = state
            .chain
            .utxos()
            .map(|(op, u)| (*op, u.txout.value))
            .collect();
        assert!(
            utxos.contains_key(&OutPoint::new(txid, 0))
                || utxos.contains_key(&OutPoint::new(txid, 1))
        );
        (
            state.chain.tip(),
            utxos,
            waiting,
            state.faucet.address.clone(),
        )
    };
    let chain = open(dir.path(), 101);
    let state = chain.lock();
    assert_eq!(state.chain.tip(), tip);
    let again: std::collections::BTreeMap<OutPoint, Amount> = state
        .chain
        .utxos()
        .map(|(op, u)| (*op, u.txout.value))
        .collect();
    assert_eq!(again, utxos);
    assert!(state.mempool.get(&pooled).is_some());
    assert_eq!(state.faucet.address, faucet);
    // `initial_blocks` applies only to a new chain.
    assert_eq!(state.chain.height(), 102);
}

#[test]
fn invalidating_a_block_returns_its_transactions_to_the_mempool() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open(dir.path(), 101);
    let txid = chain
        .faucet_pay(address().script_pubkey(), Amount::from_btc(1.0).unwrap())
        .unwrap();
    let mined = chain.mine(1, &address().script_pubkey()).unwrap();
    assert!(chain.lock().mempool.is_empty());
    chain.invalidate(&mined[0]).unwrap();
    {
        let state = chain.lock();
        assert_eq!(state.chain.height(), 101);
        assert!(state.mempool.get(&txid).is_some());
        assert!(state.chain.entry(&mined[0]).unwrap().invalid);
    }
    // The invalidation is durable.
    drop(chain);
    let chain = open(dir.path(), 0);
    let state = chain.lock();
    assert_eq!(state.chain.height(), 101);
    assert!(state.mempool.get(&txid).is_some());
    assert!(state.chain.entry(&mined[0]).unwrap().invalid);
}

/// A P2WPKH spend of `prev` (paying `key`) back to `key`, leaving `fee`.
fn respend(key: &SecretKey, prev: OutPoint, value: Amount, fee: Amount) -> bitcoin::Transaction {
    let pk = bitcoin::CompressedPublicKey(key.public_key(&bitcoin::secp256k1::Secp256k1::new()));
    let mut tx = bitcoin::Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![bitcoin::TxIn {
            previous_output: prev,
            script_sig: ScriptBuf::new(),
            sequence: bitcoin::Sequence::MAX,
            witness: bitcoin::Witness::new(),
        }],
        output: vec![bitcoin::TxOut {
            value: value - fee,
            script_pubkey: Address::p2wpkh(&pk, Network::Regtest).script_pubkey(),
        }],
    };
    faucet::sign_p2wpkh(&mut tx, 0, key, value);
    tx
}

#[test]
fn blocks_take_the_best_fee_rate_first_and_parents_before_children() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open(dir.path(), 102);
    let key = SecretKey::new(&mut bitcoin::secp256k1::rand::thread_rng());
    let pk = bitcoin::CompressedPublicKey(key.public_key(&bitcoin::secp256k1::Secp256k1::new()));
    let mine_to = Address::p2wpkh(&pk, Network::Regtest).script_pubkey();
    let one = Amount::from_btc(1.0).unwrap();
    let a = chain.faucet_pay(mine_to.clone(), one).unwrap();
    let b = chain.faucet_pay(mine_to.clone(), one).unwrap();
    chain.mine(1, &address().script_pubkey()).unwrap();
    let vout_of = |txid| {
        let state = chain.lock();
        let (tx, _) = state.chain.transaction(&txid).unwrap();
        tx.output
            .iter()
            .position(|o| o.script_pubkey == mine_to)
            .unwrap() as u32
    };
    let (a, b) = (OutPoint::new(a, vout_of(a)), OutPoint::new(b, vout_of(b)));

    let parent = respend(&key, a, one, Amount::from_sat(200));
    let child = respend(
        &key,
        OutPoint::new(parent.compute_txid(), 0),
        one - Amount::from_sat(200),
        Amount::from_sat(20_000),
    );
    let middle = respend(&key, b, one, Amount::from_sat(2_000));
    for tx in [&parent, &child, &middle] {
        chain.submit(tx).unwrap();
    }
    let hash = chain.mine(1, &address().script_pubkey()).unwrap()[0];
    let state = chain.lock();
    let block = &state.chain.entry(&hash).unwrap().block;
    let order: Vec<_> = block
        .txdata
        .iter()
        .skip(1)
        .map(|t| t.compute_txid())
        .collect();
    assert_eq!(
        order,
        vec![
            middle.compute_txid(),
            parent.compute_txid(),
            child.compute_txid()
        ]
    );
    assert!(state.mempool.is_empty());
    // The coinbase collects the fees.
    let fees = Amount::from_sat(200 + 20_000 + 2_000);
    assert_eq!(
        block.txdata[0].output[0].value,
        params::subsidy(state.chain.height()) + fees
    );
}

#[test]
fn a_second_opener_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _chain = open(dir.path(), 0);
    let err = DevChain::open(dir.path(), Config::default()).err().unwrap();
    assert!(err.to_string().contains("in use"), "{err}");
}
