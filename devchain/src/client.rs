//! Reaching a running dev chain from its directory (operator commands, tests).

use std::path::Path;

use anyhow::{Context, Result};
use skylight_client::chain::ChainClient;

use crate::rpc::Endpoint;

/// A client for the chain whose directory is `dir` (reads `rpc-uri` and `rpc.cookie`).
pub fn for_dir(dir: &Path) -> Result<ChainClient> {
    let (uri_file, cookie) = Endpoint::files(dir);
    let url = std::fs::read_to_string(&uri_file)
        .with_context(|| format!("no running dev chain in {} (no rpc-uri)", dir.display()))?;
    ChainClient::with_cookie(url.trim(), &cookie)
}
