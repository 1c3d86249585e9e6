//! bitcoind's JSON-RPC over HTTP, with basic auth from a cookie file.

mod json;
mod methods;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::DevChain;

/// The user name in bitcoind's cookie file.
pub const COOKIE_USER: &str = "__cookie__";
/// The largest request body accepted (a block-sized transaction batch fits).
const MAX_BODY: usize = 32 * 1024 * 1024;

/// An RPC error as bitcoind reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    /// bitcoind's error code.
    pub code: i32,
    /// The message.
    pub message: String,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }
}

/// bitcoind's general error codes.
pub mod codes {
    /// RPC_MISC_ERROR.
    pub const MISC_ERROR: i32 = -1;
    /// RPC_TYPE_ERROR.
    pub const TYPE_ERROR: i32 = -3;
    /// RPC_INVALID_ADDRESS_OR_KEY.
    pub const INVALID_ADDRESS_OR_KEY: i32 = -5;
    /// RPC_WALLET_INSUFFICIENT_FUNDS.
    pub const INSUFFICIENT_FUNDS: i32 = -6;
    /// RPC_INVALID_PARAMETER.
    pub const INVALID_PARAMETER: i32 = -8;
    /// RPC_DATABASE_ERROR.
    pub const DATABASE_ERROR: i32 = -20;
    /// RPC_METHOD_NOT_FOUND.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// RPC_INVALID_REQUEST.
    pub const INVALID_REQUEST: i32 = -32600;
    /// RPC_PARSE_ERROR.
    pub const PARSE_ERROR: i32 = -32700;
}

/// Credentials clients may present: the cookie file's `user:password`, and optionally a
/// user and password the operator chose (bitcoind's `rpcuser`/`rpcpassword`, which it
/// accepts beside its cookie when set with `rpcauth`).
#[derive(Clone)]
pub struct Credentials {
    /// Accepted `user:password` texts; the first is the cookie's.
    accepted: Vec<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(…)")
    }
}

impl Credentials {
    /// Writes a new cookie (0600) with a random password at `path`, as bitcoind does at
    /// every start: clients that kept the old one must read it again.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut secret).map_err(std::io::Error::other)?;
        let user_pass = format!("{COOKIE_USER}:{}", hex::encode(secret));
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = path.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(user_pass.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(Credentials {
            accepted: vec![user_pass],
        })
    }

    /// Reads an existing cookie file.
    pub fn load(path: &Path) -> std::io::Result<Self> {
        Ok(Credentials {
            accepted: vec![std::fs::read_to_string(path)?.trim().to_string()],
        })
    }

    /// Also accepts `user` with `password`.
    pub fn with_user(mut self, user: &str, password: &str) -> Self {
        self.accepted.push(format!("{user}:{password}"));
        self
    }

    /// The cookie's `base64(user:password)`, as `lightning-block-sync`'s `RpcClient::new`
    /// wants it.
    pub fn base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.accepted[0].as_bytes())
    }

    fn headers(&self) -> Vec<String> {
        self.accepted
            .iter()
            .map(|a| {
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(a.as_bytes())
                )
            })
            .collect()
    }
}

/// Files a running server leaves in its directory for clients.
pub struct Endpoint {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The cookie file.
    pub cookie: PathBuf,
}

impl Endpoint {
    /// The files of a chain directory: `rpc-uri` and `rpc.cookie`.
    pub fn files(dir: &Path) -> (PathBuf, PathBuf) {
        (dir.join("rpc-uri"), dir.join("rpc.cookie"))
    }
}

/// Serves RPC for `chain` on `listener` until `shutdown` resolves.
pub async fn serve(
    chain: Arc<DevChain>,
    listener: TcpListener,
    credentials: Credentials,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let expected = Arc::new(credentials.headers());
    tokio::pin!(shutdown);
    // Connections end with the server, as they do when bitcoind stops: a client must not go
    // on being served on a kept-alive connection after a stop.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            a = listener.accept() => a,
        };
        while connections.try_join_next().is_some() {}
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let chain = chain.clone();
        let expected = expected.clone();
        connections.spawn(async move {
            let service =
                hyper::service::service_fn(move |req| handle(chain.clone(), expected.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Binds `addr`, writes the endpoint files into `dir`, and serves until `shutdown`.
pub async fn run(
    chain: Arc<DevChain>,
    dir: &Path,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let (listener, endpoint) = bind(dir, addr).await?;
    tracing::info!(url = %endpoint.url, cookie = %endpoint.cookie.display(), "dev chain RPC listening");
    let credentials = Credentials::load(&endpoint.cookie)?;
    serve(chain, listener, credentials, shutdown).await;
    Ok(())
}

/// Binds `addr` and writes `rpc-uri` and a new `rpc.cookie` into `dir`.
pub async fn bind(dir: &Path, addr: SocketAddr) -> std::io::Result<(TcpListener, Endpoint)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let (uri_file, cookie) = Endpoint::files(dir);
    Credentials::create(&cookie)?;
    let url = format!("http://{local}");
    // Written whole, then renamed into place: a client polling for the file never reads
    // it half-written.
    let tmp = uri_file.with_extension("tmp");
    std::fs::write(&tmp, format!("{url}\n"))?;
    std::fs::rename(&tmp, &uri_file)?;
    Ok((listener, Endpoint { url, cookie }))
}

type Body = Full<Bytes>;

async fn handle(
    chain: Arc<DevChain>,
    expected_auth: Arc<Vec<String>>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let authorized = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            // Every entry is compared, so the time taken says nothing of which matched.
            expected_auth.iter().fold(false, |ok, e| {
                constant_time_eq(v.as_bytes(), e.as_bytes()) | ok
            })
        });
    if !authorized {
        return Ok(Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("WWW-Authenticate", "Basic realm=\"jsonrpc\"")
            .body(Body::default())
            .expect("static response"));
    }
    if req.method() != hyper::Method::POST {
        return Ok(Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .body(Body::from("JSONRPC server handles only POST requests"))
            .expect("static response"));
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                error_object(
                    Value::Null,
                    &RpcError::new(codes::INVALID_REQUEST, "request too large"),
                ),
            ));
        }
    };
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            return Ok(reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                error_object(
                    Value::Null,
                    &RpcError::new(codes::PARSE_ERROR, "Parse error"),
                ),
            ));
        }
    };
    match request {
        Value::Array(batch) => {
            let mut out = Vec::with_capacity(batch.len());
            for call in batch {
                out.push(call_one(&chain, call).await.1);
            }
            Ok(reply(StatusCode::OK, Value::Array(out)))
        }
        call => {
            let (status, value) = call_one(&chain, call).await;
            Ok(reply(status, value))
        }
    }
}

/// Runs one call; bitcoind answers errors with HTTP 500 (404 for an unknown method).
async fn call_one(chain: &Arc<DevChain>, call: Value) -> (StatusCode, Value) {
    let id = call.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = call
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        let e = RpcError::new(codes::INVALID_REQUEST, "Method must be a string");
        return (StatusCode::BAD_REQUEST, error_object(id, &e));
    };
    let params = match call.get("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(p)) => p.clone(),
        Some(_) => {
            let e = RpcError::new(
                codes::INVALID_REQUEST,
                "Params must be an array (named parameters are not supported)",
            );
            return (StatusCode::BAD_REQUEST, error_object(id, &e));
        }
    };
    let chain = chain.clone();
    let result = tokio::task::spawn_blocking(move || methods::dispatch(&chain, &method, &params))
        .await
        .unwrap_or_else(|e| {
            Err(RpcError::new(
                codes::MISC_ERROR,
                format!("internal error: {e}"),
            ))
        });
    match result {
        Ok(result) => (
            StatusCode::OK,
            json!({ "result": result, "error": null, "id": id }),
        ),
        Err(e) => {
            let status = if e.code == codes::METHOD_NOT_FOUND {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            (status, error_object(id, &e))
        }
    }
}

fn error_object(id: Value, e: &RpcError) -> Value {
    json!({ "result": null, "error": { "code": e.code, "message": e.message }, "id": id })
}

fn reply(status: StatusCode, value: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Body::from(format!("{value}\n")))
        .expect("valid response")
}

/// Compares secrets without leaking where they differ through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}
