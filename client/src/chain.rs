//! A client for bitcoind's JSON-RPC (the embedded dev chain speaks it too): node-hosts
//! follow the chain through it, and operator commands and tests drive the dev chain with
//! it. It is `lightning-block-sync`'s own `RpcClient`, with bitcoind's refusals readable.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use base64::Engine;
use lightning_block_sync::http::HttpEndpoint;
use lightning_block_sync::rpc::{RpcClient, RpcError};
use serde_json::Value;

/// A JSON-RPC client.
pub struct ChainClient {
    rpc: RpcClient,
    /// The server's URL.
    pub url: String,
}

impl ChainClient {
    /// A client for `url` authenticating with the cookie file at `cookie` (bitcoind's
    /// `user:password` form).
    pub fn with_cookie(url: &str, cookie: &Path) -> Result<Self> {
        let user_pass = std::fs::read_to_string(cookie)
            .with_context(|| format!("cannot read the cookie {}", cookie.display()))?;
        let credentials = base64::engine::general_purpose::STANDARD.encode(user_pass.trim());
        Self::new(url, &credentials)
    }

    /// A client for `url` (`http://host:port[/path]`) with base64 `user:password`.
    pub fn new(url: &str, credentials_base64: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("{url:?} is not an http:// URL"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| anyhow!("{url:?} names no port"))?;
        let port: u16 = port
            .parse()
            .with_context(|| format!("bad port in {url:?}"))?;
        let endpoint = HttpEndpoint::for_host(host.to_string())
            .with_port(port)
            .with_path(path.to_string());
        Ok(ChainClient {
            rpc: RpcClient::new(credentials_base64, endpoint),
            url: url.to_string(),
        })
    }

    /// Calls `method`; a refusal carries bitcoind's code and message.
    pub async fn call(&self, method: &str, params: &[Value]) -> Result<Value> {
        self.rpc
            .call_method::<Value>(method, params)
            .await
            .map_err(
                |e| match e.get_ref().and_then(|i| i.downcast_ref::<RpcError>()) {
                    Some(r) => anyhow!("{method} refused ({}): {}", r.code, r.message),
                    None => anyhow!("{method} failed: {e}"),
                },
            )
    }

    /// The underlying `lightning-block-sync` client.
    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }
}

/// A node follows the chain through this client as it would through `RpcClient`.
impl lightning_block_sync::BlockSource for ChainClient {
    fn get_header<'a>(
        &'a self,
        header_hash: &'a bitcoin::BlockHash,
        height_hint: Option<u32>,
    ) -> lightning_block_sync::AsyncBlockSourceResult<'a, lightning_block_sync::BlockHeaderData>
    {
        lightning_block_sync::BlockSource::get_header(&self.rpc, header_hash, height_hint)
    }

    fn get_block<'a>(
        &'a self,
        header_hash: &'a bitcoin::BlockHash,
    ) -> lightning_block_sync::AsyncBlockSourceResult<'a, lightning_block_sync::BlockData> {
        lightning_block_sync::BlockSource::get_block(&self.rpc, header_hash)
    }

    fn get_best_block(
        &self,
    ) -> lightning_block_sync::AsyncBlockSourceResult<'_, (bitcoin::BlockHash, Option<u32>)> {
        lightning_block_sync::BlockSource::get_best_block(&self.rpc)
    }
}
