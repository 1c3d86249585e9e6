//! gRPC over a local unix socket (the scheduler's operator and events sockets): no TLS, the
//! socket's file mode is the access check.

use std::path::Path;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint, Uri};

/// Opens a channel to the gRPC server on `socket`; each call times out after `timeout`,
/// if given.
pub async fn channel(
    socket: &Path,
    timeout: Option<Duration>,
) -> Result<Channel, tonic::transport::Error> {
    let socket = socket.to_path_buf();
    // The URI is a placeholder: the connector ignores it and dials the socket.
    let mut endpoint = Endpoint::from_static("http://local.sock");
    if let Some(t) = timeout {
        endpoint = endpoint.timeout(t);
    }
    endpoint
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
}
