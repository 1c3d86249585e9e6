//! The export download server: HTTPS with the scheduler's own server certificate, no
//! client certificate asked (the URL is the capability: an unguessable token), one route:
//! `GET /exports/<token>`.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::Exports;
use crate::shutdown::Shutdown;
use crate::store::records::ExportState;

/// How long a client has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves downloads on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    exports: Arc<Exports>,
    shutdown: Shutdown,
) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = tokio::select! {
            () = shutdown.wait() => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "export server: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (acceptor, exports, shutdown) = (acceptor.clone(), exports.clone(), shutdown.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "export server: TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let service = hyper::service::service_fn(move |req| {
                let exports = exports.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&exports, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                () = shutdown.wait() => {}
            }
        });
    }
}

fn text(status: StatusCode, msg: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(format!("{msg}\n"))))
        .expect("a valid response")
}

async fn answer(exports: &Exports, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET is served here");
    }
    let Some(token) = req.uri().path().strip_prefix("/exports/") else {
        return text(StatusCode::NOT_FOUND, "no such export");
    };
    let token = token.to_string();
    let store = exports.store().clone();
    let found = tokio::task::spawn_blocking(move || {
        store.exports().map(|all| {
            all.into_iter()
                .find(|(_, r)| crate::auth::same_secret(r.token.as_bytes(), token.as_bytes()))
        })
    })
    .await;
    let (node_id, record) = match found {
        Ok(Ok(Some(found))) => found,
        Ok(Ok(None)) => return text(StatusCode::NOT_FOUND, "no such export"),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "export server: storage");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the scheduler hit an internal error",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "export server: task");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the scheduler hit an internal error",
            );
        }
    };
    if record.state != ExportState::Exported {
        return text(
            StatusCode::CONFLICT,
            "the export is not finished yet; call ExportNode again, which returns once it is",
        );
    }
    if record.deleted_at.is_some() {
        return text(
            StatusCode::GONE,
            "this export was deleted once its keeping time was over",
        );
    }
    let file = exports.file(&node_id);
    match tokio::fs::read(&file).await {
        Ok(bytes) => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/octet-stream")
            .header(
                "content-disposition",
                format!(
                    "attachment; filename=\"{}.skylight-export\"",
                    hex::encode(node_id)
                ),
            )
            .body(Full::new(Bytes::from(bytes)))
            .expect("a valid response"),
        Err(e) => {
            tracing::error!(file = %file.display(), error = %e, "export server: the file is missing");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the scheduler hit an internal error",
            )
        }
    }
}
