//! Transactions waiting for a block.

use std::collections::{HashMap, HashSet};

use bitcoin::{Amount, OutPoint, Transaction, TxOut, Txid};

/// A transaction in the mempool.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The transaction.
    pub tx: Transaction,
    /// Its fee.
    pub fee: Amount,
    /// Its virtual size.
    pub vsize: u64,
    /// Its weight.
    pub weight: u64,
    /// Unix seconds it was accepted.
    pub time: u64,
    /// Chain height when it was accepted.
    pub height: u32,
    /// Acceptance order, for persistence and for stable block templates.
    pub seq: u64,
}

impl Entry {
    /// Fee per 1000 weight units, for ordering.
    pub fn fee_rate(&self) -> f64 {
        self.fee.to_sat() as f64 / self.weight.max(1) as f64
    }
}

/// The mempool.
#[derive(Default)]
pub struct Mempool {
    entries: HashMap<Txid, Entry>,
    /// Which mempool transaction spends each outpoint.
    spends: HashMap<OutPoint, Txid>,
    next_seq: u64,
}

impl Mempool {
    /// An entry.
    pub fn get(&self, txid: &Txid) -> Option<&Entry> {
        self.entries.get(txid)
    }

    /// Every entry.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// How many transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The mempool transaction spending `outpoint`, if any.
    pub fn spender(&self, outpoint: &OutPoint) -> Option<Txid> {
        self.spends.get(outpoint).copied()
    }

    /// An output of a mempool transaction.
    pub fn output(&self, outpoint: &OutPoint) -> Option<&TxOut> {
        self.entries
            .get(&outpoint.txid)?
            .tx
            .output
            .get(outpoint.vout as usize)
    }

    /// The sequence number the next entry gets.
    pub fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Adds a validated entry.
    pub fn insert(&mut self, entry: Entry) {
        let txid = entry.tx.compute_txid();
        for input in &entry.tx.input {
            self.spends.insert(input.previous_output, txid);
        }
        self.next_seq = self.next_seq.max(entry.seq);
        self.entries.insert(txid, entry);
    }

    /// Removes a transaction (not its descendants).
    pub fn remove(&mut self, txid: &Txid) -> Option<Entry> {
        let entry = self.entries.remove(txid)?;
        for input in &entry.tx.input {
            if self.spends.get(&input.previous_output) == Some(txid) {
                self.spends.remove(&input.previous_output);
            }
        }
        Some(entry)
    }

    /// Removes everything, returning the entries in acceptance order.
    pub fn drain(&mut self) -> Vec<Entry> {
        self.spends.clear();
        let mut all: Vec<Entry> = self.entries.drain().map(|(_, e)| e).collect();
        all.sort_by_key(|e| e.seq);
        all
    }

    /// Transactions for a block, best fee rate first, parents always before children, within
    /// `max_weight`.
    pub fn select(&self, max_weight: u64) -> Vec<&Entry> {
        let mut chosen: Vec<&Entry> = Vec::new();
        let mut in_block: HashSet<Txid> = HashSet::new();
        let mut weight = 0u64;
        loop {
            // Ready: every in-mempool parent already chosen.
            let best = self
                .entries
                .iter()
                .filter(|(txid, _)| !in_block.contains(*txid))
                .filter(|(_, e)| {
                    e.tx.input.iter().all(|i| {
                        !self.entries.contains_key(&i.previous_output.txid)
                            || in_block.contains(&i.previous_output.txid)
                    })
                })
                .filter(|(_, e)| weight + e.weight <= max_weight)
                .max_by(|(_, a), (_, b)| {
                    a.fee_rate()
                        .total_cmp(&b.fee_rate())
                        .then(b.seq.cmp(&a.seq))
                });
            let Some((txid, entry)) = best else { break };
            weight += entry.weight;
            in_block.insert(*txid);
            chosen.push(entry);
        }
        chosen
    }
}
