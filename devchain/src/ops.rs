//! Operator commands against a running chain: mine, fund, tip, any RPC call. Shared by `devchain` and
//! `scheduler chain`.

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use skylight_client::chain::ChainClient;

/// What an operator can ask a running chain.
#[derive(Subcommand, Debug, Clone)]
pub enum ChainCommand {
    /// Mine blocks (to ADDRESS, or to the faucet) and print their hashes.
    Mine {
        /// How many.
        count: u32,
        /// Where the coinbases pay.
        #[arg(long)]
        address: Option<String>,
    },
    /// Pay an address from the faucet and print the transaction id (mine a block to
    /// confirm it).
    Fund {
        /// Regtest address.
        address: String,
        /// Amount in BTC.
        amount_btc: f64,
    },
    /// Show the tip: height and hash.
    Tip,
    /// Call a JSON-RPC method, as `bitcoin-cli` does, and print its JSON answer. Each
    /// parameter is read as JSON, or taken as a string if it is not JSON.
    Call {
        /// The method (`getrawmempool`, `invalidateblock`, …).
        method: String,
        /// Its parameters, in order.
        params: Vec<String>,
    },
}

/// Runs `command` against `client`, printing the result.
pub async fn operate(client: &ChainClient, command: ChainCommand) -> Result<()> {
    match command {
        ChainCommand::Mine { count, address } => {
            let address = match address {
                Some(a) => a,
                None => client
                    .call("getnewaddress", &[])
                    .await?
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            };
            let hashes = client
                .call("generatetoaddress", &[json!(count), json!(address)])
                .await?;
            for h in hashes.as_array().into_iter().flatten() {
                println!("{}", h.as_str().unwrap_or_default());
            }
        }
        ChainCommand::Fund {
            address,
            amount_btc,
        } => {
            let txid = client
                .call("sendtoaddress", &[json!(address), json!(amount_btc)])
                .await?;
            println!("{}", txid.as_str().unwrap_or_default());
        }
        ChainCommand::Call { method, params } => {
            let params: Vec<serde_json::Value> = params
                .iter()
                .map(|p| serde_json::from_str(p).unwrap_or_else(|_| json!(p)))
                .collect();
            println!("{}", client.call(&method, &params).await?);
        }
        ChainCommand::Tip => {
            let info = client.call("getblockchaininfo", &[]).await?;
            println!(
                "height {} hash {}",
                info["blocks"],
                info["bestblockhash"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(())
}
