//! What `getblockchaininfo` says about a chain: its network, and whether it is in sync.

use anyhow::{Result, anyhow};
use bitcoin::Network;
use serde_json::Value;

/// A chain's own account of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInfo {
    /// The network it is on.
    pub network: Network,
    /// Blocks it has validated.
    pub blocks: u32,
    /// Headers it knows of (more than `blocks` while it downloads).
    pub headers: u32,
    /// Whether it is still in its initial block download.
    pub initial_download: bool,
}

/// A chain more than this many blocks short of its headers is still syncing.
const SYNC_SLACK: u32 = 2;

impl ChainInfo {
    /// Reads `getblockchaininfo`'s answer.
    pub fn from_json(v: &Value) -> Result<Self> {
        let name = v["chain"]
            .as_str()
            .ok_or_else(|| anyhow!("getblockchaininfo names no chain: {v}"))?;
        let network = network_of(name)
            .ok_or_else(|| anyhow!("getblockchaininfo names an unknown chain {name:?}"))?;
        let count = |k: &str| {
            v[k].as_u64()
                .map(|n| n as u32)
                .ok_or_else(|| anyhow!("getblockchaininfo has no {k}"))
        };
        let blocks = count("blocks")?;
        Ok(ChainInfo {
            network,
            blocks,
            headers: count("headers").unwrap_or(blocks),
            initial_download: v["initialblockdownload"].as_bool().unwrap_or(false),
        })
    }

    /// Why the chain cannot be trusted to be at the network's tip, if it cannot.
    pub fn behind(&self) -> Option<String> {
        if self.initial_download {
            Some(format!(
                "bitcoind is still in its initial block download (block {} of {} headers)",
                self.blocks, self.headers
            ))
        } else if self.headers > self.blocks + SYNC_SLACK {
            Some(format!(
                "bitcoind is behind the headers it knows of (block {} of {})",
                self.blocks, self.headers
            ))
        } else {
            None
        }
    }
}

/// The network bitcoind calls `chain` (`main`, `test`, `testnet4`, `signet`, `regtest`).
pub fn network_of(chain: &str) -> Option<Network> {
    match chain {
        "main" => Some(Network::Bitcoin),
        "test" => Some(Network::Testnet),
        "testnet4" => Some(Network::Testnet4),
        "signet" => Some(Network::Signet),
        "regtest" => Some(Network::Regtest),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bitcoinds_chain_names_are_networks() {
        let info = ChainInfo::from_json(&json!({
            "chain": "main", "blocks": 870000, "headers": 870000,
            "initialblockdownload": false
        }))
        .unwrap();
        assert_eq!(info.network, Network::Bitcoin);
        assert_eq!(info.behind(), None);
        for (name, n) in [
            ("test", Network::Testnet),
            ("testnet4", Network::Testnet4),
            ("signet", Network::Signet),
            ("regtest", Network::Regtest),
        ] {
            assert_eq!(network_of(name), Some(n));
        }
        assert!(ChainInfo::from_json(&json!({"chain": "liquid", "blocks": 1})).is_err());
    }

    #[test]
    fn a_chain_downloading_or_short_of_its_headers_is_behind() {
        let ibd = json!({"chain": "signet", "blocks": 10, "headers": 200000,
                         "initialblockdownload": true});
        let said = ChainInfo::from_json(&ibd).unwrap().behind().unwrap();
        assert!(said.contains("initial block download") && said.contains("10 of 200000"));
        let lag = json!({"chain": "signet", "blocks": 100, "headers": 110});
        assert!(ChainInfo::from_json(&lag).unwrap().behind().is_some());
        let fine = json!({"chain": "signet", "blocks": 100, "headers": 101});
        assert_eq!(ChainInfo::from_json(&fine).unwrap().behind(), None);
    }
}
