//! The local launcher: each node-host a child process of this scheduler, in its node
//! directory on this machine. A start prepares the directory (a fresh server certificate,
//! the tenant's CA and revoked devices, the chain's and the database's credentials in
//! owner-only files), runs node-host, and waits until its gRPC answers.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bitcoin::secp256k1::PublicKey;
use skylight_certs::{Authority, Validity};
use skylight_client::chain::RpcAuth;
use skylight_node_host::config as node_host;
use tokio::process::{Child, Command};

use super::launcher::{Boxed, Launcher, Started};
use super::{NodeManager, process};
use crate::datadir::{write_public, write_secret};
use crate::error::Error;

fn failed(what: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!(
        "the node could not be started ({what}); try again, and if it persists the operator's log has details"
    ))
}

/// What a node-host serves its gRPC with, made afresh for each start.
pub(super) struct ServerFiles {
    /// Its certificate, the tenant CA's and the users CA's, PEM.
    pub chain_pem: String,
    /// Its key, PEM.
    pub key_pem: String,
    /// The tenant's CA, PEM: the only client trust anchor.
    pub tenant_ca_pem: String,
}

impl ServerFiles {
    /// A fresh server certificate under the tenant's CA: the node trusts only that CA for
    /// clients, and clients find `localhost` in it, as Greenlight's expect.
    pub fn issue(
        m: &NodeManager,
        ca: &crate::store::records::TenantCaRecord,
        node_hex: &str,
    ) -> Result<Self, Error> {
        let tenant = Authority::load(&ca.cert_pem, &ca.key_pem)
            .map_err(|e| Error::Internal(format!("tenant CA of {node_hex}: {e}")))?;
        let server = tenant.issue_node_server(node_hex, Validity::days(m.settings.cert_days))?;
        Ok(ServerFiles {
            chain_pem: format!("{}{}{}", server.cert_pem, ca.cert_pem, m.users_ca_pem),
            key_pem: server.key_pem,
            tenant_ca_pem: ca.cert_pem.clone(),
        })
    }
}

/// Node-hosts as local processes.
pub struct LocalLauncher;

impl Launcher for LocalLauncher {
    fn start<'a>(
        &'a self,
        manager: &'a NodeManager,
        node_id: &'a [u8; 33],
    ) -> Boxed<'a, Result<Arc<dyn Started>, Error>> {
        Box::pin(async move { Ok(Arc::new(start(manager, node_id).await?) as Arc<dyn Started>) })
    }
}

/// A node-host running as a child of this scheduler.
struct LocalNodeHost {
    uri: String,
    pid: u32,
    /// Its pid file, removed once it has exited.
    pid_file: PathBuf,
    /// Taken by the one wait for its exit.
    child: tokio::sync::Mutex<Option<Child>>,
    exited: AtomicBool,
}

impl Started for LocalNodeHost {
    fn uri(&self) -> &str {
        &self.uri
    }

    fn pid(&self) -> Option<u32> {
        Some(self.pid)
    }

    fn alive(&self) -> bool {
        !self.exited.load(Ordering::SeqCst) && process::alive(self.pid)
    }

    fn stop(&self, grace: Duration) -> Boxed<'_, ()> {
        Box::pin(process::terminate(self.pid, grace))
    }

    fn exited(&self) -> Boxed<'_, Result<(), String>> {
        Box::pin(async move {
            let child = self.child.lock().await.take();
            let status = match child {
                Some(mut child) => child.wait().await,
                None => return Err("its exit was waited for already".into()),
            };
            self.exited.store(true, Ordering::SeqCst);
            let _ = std::fs::remove_file(&self.pid_file);
            match status {
                Ok(s) if s.success() => Ok(()),
                Ok(s) => Err(s.to_string()),
                Err(e) => Err(format!("lost track of it: {e}")),
            }
        })
    }
}

/// Prepares the node directory and starts node-host; returns once its gRPC listens.
async fn start(m: &NodeManager, node_id: &[u8; 33]) -> Result<LocalNodeHost, Error> {
    let node_hex = hex::encode(node_id);
    let dir = m.node_dir(node_id);
    let store = m.store.clone();
    let id = *node_id;
    let ca = tokio::task::spawn_blocking(move || store.tenant_ca(&id))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??
        .ok_or_else(|| Error::NotFound(format!("node {node_hex} is not registered here")))?;

    std::fs::create_dir_all(dir.root())
        .map_err(|e| Error::Internal(format!("{}: {e}", dir.root().display())))?;
    std::fs::set_permissions(dir.root(), std::fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::Internal(e.to_string()))?;

    let server = ServerFiles::issue(m, &ca, &node_hex)?;
    let internal = |e: anyhow::Error| Error::Internal(e.to_string());
    write_public(&dir.server_cert(), &server.chain_pem).map_err(internal)?;
    write_secret(&dir.server_key(), &server.key_pem).map_err(internal)?;
    write_public(&dir.tenant_ca(), &server.tenant_ca_pem).map_err(internal)?;
    // What the node-host refuses besides what TLS does: the tenant's revoked devices.
    {
        let (store, dir, id) = (m.store.clone(), dir.clone(), *node_id);
        tokio::task::spawn_blocking(move || crate::revocations::write_node_file(&store, &dir, &id))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
    }

    let uri_file = dir.grpc_uri();
    let _ = std::fs::remove_file(&uri_file);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.log())
        .map_err(|e| Error::Internal(format!("{}: {e}", dir.log().display())))?;
    let s = &m.settings;
    let node_key = PublicKey::from_slice(node_id)
        .map_err(|_| Error::Internal(format!("{node_hex} is not a public key")))?;
    let mut config = node_host::Config::new(
        node_key,
        dir.root().to_path_buf(),
        s.chain.url().to_string(),
    );
    config.network = s.network;
    // The chain's credentials reach node-host in a file, never on its command line: the
    // operator's cookie file itself (bitcoind rewrites it at every start), or the user and
    // password written, owner-only, into the node directory.
    config.bitcoind_cookie = match &s.chain.auth {
        RpcAuth::None => {
            let _ = std::fs::remove_file(dir.bitcoind_auth());
            None
        }
        RpcAuth::Cookie(cookie) => Some(cookie.clone()),
        RpcAuth::UserPassword { user, password } => {
            write_secret(&dir.bitcoind_auth(), &format!("{user}:{password}")).map_err(internal)?;
            Some(dir.bitcoind_auth())
        }
    };
    s.node_host.apply(&mut config);
    // The database's URL (a secret) reaches node-host as the chain's password does: in an
    // owner-only file in its directory, read afresh at each start.
    match &s.node_host.state_database_url_file {
        Some(file) => {
            let given = super::database::for_node(file, &dir).map_err(failed)?;
            write_secret(&dir.state_database_url(), &given.url).map_err(internal)?;
            match &given.ca {
                Some(ca) => skylight_client::files::replace_private(&dir.state_database_ca(), ca)
                    .map_err(|e| internal(e.into()))?,
                None => {
                    let _ = std::fs::remove_file(dir.state_database_ca());
                }
            }
            config.state_database_url_file = Some(dir.state_database_url());
        }
        None => {
            let _ = std::fs::remove_file(dir.state_database_url());
            let _ = std::fs::remove_file(dir.state_database_ca());
        }
    }
    let port = match &s.p2p.ports {
        Some(range) => {
            let (store, id, range) = (m.store.clone(), *node_id, range.clone());
            tokio::task::spawn_blocking(move || store.p2p_port(&id, range))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??
        }
        // node-host keeps the port it picked the first time.
        None => 0,
    };
    config.p2p_listen = std::net::SocketAddr::new(s.p2p.bind, port);
    config.p2p_announce = s.p2p.announce.clone();
    config.events_socket = Some(s.events_socket.clone());
    // node-host keeps its log to a size itself; what it writes outside the log (a panic)
    // goes to the same file through standard error.
    config.log_file = Some(dir.log());
    let mut cmd = Command::new(&s.binary);
    if let Some(filter) = &s.node_host.log_filter {
        cmd.env("RUST_LOG", filter);
    }
    cmd.args(config.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        // If this start is abandoned (the caller went away, an error below), the process
        // goes with it rather than living on unsupervised, holding the node's files.
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| failed(format!("cannot run {}: {e}", s.binary.display())))?;
    let pid = child
        .id()
        .ok_or_else(|| failed("node-host exited at once"))?;
    write_public(&dir.pid(), &format!("{pid}\n")).map_err(internal)?;
    // Known by pid while it starts, for the events socket (then by its slot); forgotten
    // however this start ends, abandoned included.
    let _starting = Starting::new(m, pid, *node_id);

    // Ready when it has written its URI and its port accepts connections.
    let deadline = Instant::now() + s.start_timeout;
    let uri = loop {
        if let Ok(uri) = std::fs::read_to_string(&uri_file) {
            let uri = uri.trim().to_string();
            if let Some(port) = uri.rsplit(':').next()
                && tokio::net::TcpStream::connect(("127.0.0.1", port.parse().unwrap_or(0)))
                    .await
                    .is_ok()
            {
                break uri;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            let _ = std::fs::remove_file(dir.pid());
            return Err(failed(format!("node-host exited with {status}")));
        }
        if Instant::now() > deadline {
            process::terminate(pid, Duration::from_secs(2)).await;
            let _ = child.wait().await;
            return Err(failed(format!(
                "node-host did not answer within {} s",
                s.start_timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    Ok(LocalNodeHost {
        uri,
        pid,
        pid_file: dir.pid(),
        child: tokio::sync::Mutex::new(Some(child)),
        exited: AtomicBool::new(false),
    })
}

/// A node-host's pid known to the manager for as long as its start lasts.
struct Starting<'a> {
    manager: &'a NodeManager,
    pid: u32,
}

impl<'a> Starting<'a> {
    fn new(manager: &'a NodeManager, pid: u32, node_id: [u8; 33]) -> Self {
        manager
            .starting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(pid, node_id);
        Starting { manager, pid }
    }
}

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        self.manager
            .starting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.pid);
    }
}
