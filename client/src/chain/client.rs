//! The JSON-RPC client: `lightning-block-sync`'s own `RpcClient`, with bitcoind's refusals
//! readable, a cookie read again when bitcoind has rewritten it, and a chain that cannot be
//! reached told apart from one that refuses.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine;
use lightning_block_sync::http::HttpEndpoint;
use lightning_block_sync::rpc::{RpcClient, RpcError};
use lightning_block_sync::{AsyncBlockSourceResult, BlockData, BlockHeaderData, BlockSource};
use serde_json::Value;

use super::info::ChainInfo;
use super::rpc::{ChainRpc, RpcAuth};

/// Why a call did not return a result.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// bitcoind answered with an error.
    #[error("{method} refused ({code}): {message}")]
    Refused {
        /// The method called.
        method: String,
        /// bitcoind's error code.
        code: i64,
        /// bitcoind's message.
        message: String,
    },
    /// No answer: the chain is down, unreachable, or refused the credentials.
    #[error("{method} failed: {detail}")]
    Unreachable {
        /// The method called.
        method: String,
        /// What went wrong.
        detail: String,
    },
}

/// A JSON-RPC client.
pub struct ChainClient {
    settings: ChainRpc,
    rpc: RwLock<Arc<RpcClient>>,
    /// The cookie's text as last read (cookie auth only).
    cookie: Mutex<String>,
    /// The server's URL, without credentials.
    pub url: String,
}

impl ChainClient {
    /// A client for the chain `settings` describe. A cookie that cannot be read yet is not
    /// an error: bitcoind writes it when it starts, and calls read it again when they fail.
    pub fn connect(settings: &ChainRpc) -> Self {
        let cookie = match &settings.auth {
            RpcAuth::Cookie(path) => read_cookie(path).unwrap_or_default(),
            _ => String::new(),
        };
        ChainClient {
            rpc: RwLock::new(Arc::new(RpcClient::new(
                &credentials(&settings.auth, &cookie),
                endpoint(settings),
            ))),
            cookie: Mutex::new(cookie),
            url: settings.url().to_string(),
            settings: settings.clone(),
        }
    }

    /// A client for `url` (`http://host:port[/path]`, no credentials) authenticating with
    /// the cookie file at `cookie` (bitcoind's `user:password` form).
    pub fn with_cookie(url: &str, cookie: &Path) -> anyhow::Result<Self> {
        let settings = ChainRpc::new(
            url,
            bitcoin::Network::Regtest,
            RpcAuth::Cookie(cookie.to_path_buf()),
        )?;
        Ok(Self::connect(&settings))
    }

    /// A client for `url` with base64 `user:password` (tests of refused credentials).
    pub fn new(url: &str, credentials_base64: &str) -> anyhow::Result<Self> {
        let text = base64::engine::general_purpose::STANDARD.decode(credentials_base64)?;
        let text = String::from_utf8(text)?;
        let auth = match text.split_once(':') {
            Some((user, password)) => RpcAuth::UserPassword {
                user: user.to_string(),
                password: password.to_string(),
            },
            None => RpcAuth::None,
        };
        Ok(Self::connect(&ChainRpc::new(
            url,
            bitcoin::Network::Regtest,
            auth,
        )?))
    }

    /// The settings this client was made from.
    pub fn settings(&self) -> &ChainRpc {
        &self.settings
    }

    /// Calls `method`; a refusal carries bitcoind's code and message.
    pub async fn call(&self, method: &str, params: &[Value]) -> Result<Value, ChainError> {
        match self.call_once(method, params).await {
            Err(ChainError::Unreachable { .. }) if self.reload_cookie() => {
                self.call_once(method, params).await
            }
            other => other,
        }
    }

    async fn call_once(&self, method: &str, params: &[Value]) -> Result<Value, ChainError> {
        let rpc = self.rpc();
        rpc.call_method::<Value>(method, params).await.map_err(|e| {
            match e.get_ref().and_then(|i| i.downcast_ref::<RpcError>()) {
                Some(r) => ChainError::Refused {
                    method: method.to_string(),
                    code: r.code,
                    message: r.message.clone(),
                },
                None => ChainError::Unreachable {
                    method: method.to_string(),
                    detail: readable(&e),
                },
            }
        })
    }

    /// `getblockchaininfo`, read.
    pub async fn info(&self) -> anyhow::Result<ChainInfo> {
        ChainInfo::from_json(&self.call("getblockchaininfo", &[]).await?)
    }

    /// The underlying `lightning-block-sync` client as it is now (it is replaced when the
    /// cookie changes).
    pub fn rpc(&self) -> Arc<RpcClient> {
        self.rpc.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads the cookie again; whether it had changed (and the client was remade with it).
    fn reload_cookie(&self) -> bool {
        let RpcAuth::Cookie(path) = &self.settings.auth else {
            return false;
        };
        let Some(now) = read_cookie(path) else {
            return false;
        };
        let mut last = self.cookie.lock().unwrap_or_else(|p| p.into_inner());
        if *last == now {
            return false;
        }
        let fresh = Arc::new(RpcClient::new(
            &credentials(&self.settings.auth, &now),
            endpoint(&self.settings),
        ));
        *self.rpc.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        *last = now;
        true
    }
}

fn endpoint(settings: &ChainRpc) -> HttpEndpoint {
    HttpEndpoint::for_host(settings.host())
        .with_port(settings.port())
        .with_path(settings.path().to_string())
}

fn read_cookie(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// base64 `user:password` for `auth` (`cookie`: the cookie file's text).
fn credentials(auth: &RpcAuth, cookie: &str) -> String {
    let user_pass = match auth {
        RpcAuth::None => return String::new(),
        RpcAuth::UserPassword { user, password } => format!("{user}:{password}"),
        RpcAuth::Cookie(_) => cookie.to_string(),
    };
    base64::engine::general_purpose::STANDARD.encode(user_pass)
}

/// What an operator should read for the failures they meet most. bitcoind refuses wrong
/// credentials with an empty HTTP 401, which `lightning-block-sync` reports as an empty
/// answer before it looks at the status.
fn readable(e: &std::io::Error) -> String {
    let text = e.to_string();
    if text.contains("status_code: 401") || text.contains("invalid response length: 0 bytes") {
        "an empty answer, which is how bitcoind refuses the credentials (HTTP 401): check \
         the RPC user and password or the cookie file"
            .to_string()
    } else {
        text
    }
}

/// Runs `call` against the current client, and once more with a cookie read again if it
/// failed and the cookie had changed.
macro_rules! with_reload {
    ($self:ident, |$rpc:ident| $call:expr) => {
        Box::pin(async move {
            let $rpc = $self.rpc();
            match $call.await {
                Err(_) if $self.reload_cookie() => {
                    let $rpc = $self.rpc();
                    $call.await
                }
                other => other,
            }
        })
    };
}

/// A node follows the chain through this client as it would through `RpcClient`.
impl BlockSource for ChainClient {
    fn get_header<'a>(
        &'a self,
        header_hash: &'a bitcoin::BlockHash,
        height_hint: Option<u32>,
    ) -> AsyncBlockSourceResult<'a, BlockHeaderData> {
        with_reload!(self, |rpc| rpc.get_header(header_hash, height_hint))
    }

    fn get_block<'a>(
        &'a self,
        header_hash: &'a bitcoin::BlockHash,
    ) -> AsyncBlockSourceResult<'a, BlockData> {
        with_reload!(self, |rpc| rpc.get_block(header_hash))
    }

    fn get_best_block(&self) -> AsyncBlockSourceResult<'_, (bitcoin::BlockHash, Option<u32>)> {
        with_reload!(self, |rpc| rpc.get_best_block())
    }
}
