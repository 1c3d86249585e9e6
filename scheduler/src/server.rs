//! Starts the scheduler: data directory, database, gRPC over mutual TLS, admin socket.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use skylight_proto::admin::admin_server::AdminServer;
use skylight_proto::devices::devices_server::DevicesServer;
use skylight_proto::scheduler::{
    debug_server::DebugServer, pairing_server::PairingServer, scheduler_server::SchedulerServer,
};
use tokio::net::{TcpListener, UnixListener};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::server::NamedService;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::admin::AdminService;
use crate::api::service::{DebugService, DevicesService, PairingService, SchedulerService};
use crate::chain::Chain;
use crate::challenge::ChallengeBook;
use crate::config::Config;
use crate::datadir::{self, Paths};
use crate::nodes::process::reap_orphans;
use crate::nodes::{NodeManager, NodeSettings};
use crate::revocations::Revocations;
use crate::shutdown::Shutdown;
use crate::state::State;
use crate::store::{OpenError, Store};
use crate::webhooks::ingest::EventsService;
use skylight_proto::outbox::events_server::EventsServer;

/// How long a node-host may take to answer after it is started.
const NODE_START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a node-host gets to stop before it is killed.
const NODE_STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// How often export files past their keeping time are looked for.
const EXPORT_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long a client has to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How soon a device revoked through another scheduler on a shared database is refused by
/// this one (one read of the revoked devices each time).
const REVOCATIONS_REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs the scheduler until `shutdown` is triggered.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<()> {
    crate::metrics::handle();
    // rustls needs a process-wide crypto provider before tonic builds its server config.
    let _ = rustls::crypto::ring::default_provider().install_default();

    // The database first: its lock makes us the only scheduler on this directory before
    // any CA or key file is written.
    let paths = datadir::create(&config)?;
    let (store, _lock) = open_running_store(&config, &paths)?;
    let has_tenants = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.has_tenants()).await??
    };
    let shared = config.state_database_url_file.is_some().then_some(&store);
    let prepared = datadir::prepare(&config, has_tenants, shared)?;

    // Node-hosts a killed predecessor left running would be orphans: stop them first.
    let reaped = reap_orphans(&paths.nodes_dir(), NODE_STOP_GRACE).await;
    if reaped > 0 {
        tracing::info!(reaped, "stopped node-hosts left by a previous scheduler");
    }
    let network: bitcoin::Network = config
        .network
        .parse()
        .with_context(|| format!("unknown network {:?}", config.network))?;
    let chain = Chain::start(&config, &paths).await?;
    if let Err(e) = chain.check(network).await {
        chain.stop().await?;
        return Err(e);
    }
    let chain_watch = chain.watch(network, shutdown.clone());
    let launcher: Arc<dyn crate::nodes::launcher::Launcher> = match &config.launcher {
        crate::config::LauncherSettings::Local => Arc::new(crate::nodes::local::LocalLauncher),
        crate::config::LauncherSettings::Kubernetes {
            namespace,
            image,
            grpc_port,
            health_port,
        } => {
            let client = kube::Client::try_default()
                .await
                .context("cannot reach the Kubernetes API (in-cluster, or the kubeconfig)")?;
            tracing::info!(namespace = %namespace, image = %image, "node-hosts run as Pods");
            let launcher = Arc::new(crate::nodes::kube::KubeLauncher::new(
                client,
                crate::nodes::kube::KubeSettings {
                    namespace: namespace.clone(),
                    image: image.clone(),
                    grpc_port: *grpc_port,
                    health_port: *health_port,
                    p2p_port: 9735,
                },
            ));
            // Ended Pods a predecessor left (and, later, any whose supervisor missed the
            // end) are deleted with their Secrets.
            tokio::spawn(launcher.clone().reap_until(shutdown.clone()));
            launcher
        }
    };
    let nodes = NodeManager::with_launcher(
        NodeSettings {
            binary: config.node_host_bin.clone(),
            nodes_dir: paths.nodes_dir(),
            network,
            chain: chain.rpc.clone(),
            node_host: config.node_host.clone(),
            p2p: config.p2p.clone(),
            // A start may first wait for a crashed predecessor's lease to run out.
            start_timeout: match &config.node_host.state_database_url_file {
                Some(_) => NODE_START_TIMEOUT.max(
                    config
                        .node_host
                        .lease_ttl
                        .unwrap_or(skylight_node_host::config::DEFAULT_LEASE_TTL)
                        + std::time::Duration::from_secs(10),
                ),
                None => NODE_START_TIMEOUT,
            },
            stop_grace: NODE_STOP_GRACE,
            cert_days: config.server_cert_days,
            events_socket: paths.events_socket(),
            max_running: config.limits.max_running_nodes,
        },
        store.clone(),
        &prepared.users_ca,
        launcher,
    );
    let revocations = {
        let (store, dir) = (store.clone(), paths.nodes_dir());
        Arc::new(tokio::task::spawn_blocking(move || Revocations::load(store, dir)).await??)
    };
    if config.state_database_url_file.is_some() {
        // Other schedulers on the database revoke devices too.
        tokio::spawn(
            revocations
                .clone()
                .refresh_until(REVOCATIONS_REFRESH, shutdown.clone()),
        );
    }
    let webhooks = crate::webhooks::Dispatcher::start(
        store.clone(),
        config.webhooks.clone(),
        shutdown.clone(),
    )?;
    // The export download server: bound now, so its URL is known before any export.
    let export_listener = TcpListener::bind(config.exports.listen)
        .await
        .with_context(|| format!("cannot listen on {} for exports", config.exports.listen))?;
    let export_base = match &config.exports.public_url {
        Some(u) => u.clone(),
        None => format!("https://localhost:{}", export_listener.local_addr()?.port()),
    };
    let exports = Arc::new(crate::export::Exports::new(
        store.clone(),
        paths.exports_dir(),
        export_base.clone(),
        config.exports.keep,
    ));
    let state = Arc::new(State {
        exports: exports.clone(),
        webhooks,
        challenges: ChallengeBook::new(config.challenge_ttl, config.max_outstanding_challenges),
        store: store.clone(),
        users_ca: prepared.users_ca,
        root_pem: prepared.root_pem.clone(),
        config: config.clone(),
        nodes,
        signers: crate::signers::SignerHub::new(config.limits.max_signer_streams_per_tenant),
        calls: crate::limits::CallLimits::new(&config.limits),
        report_limits: Default::default(),
        revocations: revocations.clone(),
        pairings: Default::default(),
    });

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let port = listener.local_addr()?.port();
    let uri = format!("https://localhost:{port}");

    // Before the socket: a client that finds the socket finds its token.
    let admin_token = hex::encode(crate::auth::random_token()?);
    datadir::write_secret(&paths.admin_token(), &admin_token)?;
    let socket = paths.admin_socket();
    // We hold the database lock, so a socket left here is from a scheduler that died.
    let _ = std::fs::remove_file(&socket);
    let admin_listener = UnixListener::bind(&socket)
        .with_context(|| format!("cannot create {}", socket.display()))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
    let events_socket = paths.events_socket();
    let _ = std::fs::remove_file(&events_socket);
    let events_listener = UnixListener::bind(&events_socket)
        .with_context(|| format!("cannot create {}", events_socket.display()))?;
    std::fs::set_permissions(&events_socket, std::fs::Permissions::from_mode(0o600))?;

    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(
            &prepared.server_chain_pem,
            &prepared.server_key_pem,
        ))
        .client_ca_root(Certificate::from_pem(&prepared.root_pem))
        // Without a bound, a client that never finishes its handshake holds a connection.
        .timeout(TLS_HANDSHAKE_TIMEOUT);

    // Small gRPC messages suffer badly from Nagle's algorithm meeting delayed ACKs. A
    // connection past --max-connections is closed at once rather than left to queue.
    let places = Arc::new(tokio::sync::Semaphore::new(config.limits.max_connections));
    let incoming = TcpListenerStream::new(listener).filter_map(move |conn| match conn {
        Ok(stream) => {
            let _ = stream.set_nodelay(true);
            let admitted = crate::limits::Counted::admit(stream, &places);
            if admitted.is_none() {
                tracing::debug!("connection closed: --max-connections are open");
            }
            admitted.map(Ok)
        }
        Err(e) => Some(Err(e)),
    });
    // Health and reflection for operators' tools, reachable with the nobody identity.
    let (health_reporter, health, reflection) = skylight_proto::conventions::for_services(&[
        <SchedulerServer<SchedulerService> as NamedService>::NAME,
        <DebugServer<DebugService> as NamedService>::NAME,
        <PairingServer<PairingService> as NamedService>::NAME,
        <DevicesServer<DevicesService> as NamedService>::NAME,
    ])
    .await;
    tokio::spawn({
        let s = shutdown.clone();
        async move {
            s.wait().await;
            // A stopping scheduler says so to its probes while it drains.
            health_reporter
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
        }
    });
    let grpc = Server::builder()
        .max_concurrent_streams(Some(config.limits.max_streams_per_connection))
        // Keep long-lived streams (signers) honest: a peer that vanished is noticed.
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
        .tls_config(tls)?
        // A revoked device's certificate still verifies: every service refuses it first.
        .add_service(SchedulerServer::with_interceptor(
            SchedulerService(state.clone()),
            revocations.interceptor(),
        ))
        .add_service(DebugServer::with_interceptor(
            DebugService(state.clone()),
            revocations.interceptor(),
        ))
        .add_service(PairingServer::with_interceptor(
            PairingService(state.clone()),
            revocations.interceptor(),
        ))
        .add_service(DevicesServer::with_interceptor(
            DevicesService(state.clone()),
            revocations.interceptor(),
        ))
        .add_service(health)
        .add_service(reflection)
        .serve_with_incoming_shutdown(incoming, {
            let s = shutdown.clone();
            async move { s.wait().await }
        });
    // Served until the node-hosts have stopped: what they raise while winding down is
    // handed over, not left in their outboxes until they next run.
    let (events_stop, events_stopped) = tokio::sync::oneshot::channel::<()>();
    let events = tokio::spawn(
        Server::builder()
            .add_service(EventsServer::new(EventsService(state.clone())))
            .serve_with_incoming_shutdown(UnixListenerStream::new(events_listener), async move {
                let _ = events_stopped.await;
            }),
    );
    let admin = Server::builder()
        .add_service(AdminServer::with_interceptor(
            AdminService(state.clone()),
            crate::admin::check_token(admin_token),
        ))
        .serve_with_incoming_shutdown(UnixListenerStream::new(admin_listener), {
            let s = shutdown.clone();
            async move { s.wait().await }
        });

    // Metrics and the plain health probe: their own port, no TLS, nothing of a tenant's.
    let metrics_listener = TcpListener::bind(config.metrics_listen)
        .await
        .with_context(|| format!("cannot listen on {} for metrics", config.metrics_listen))?;
    let metrics_uri = format!("http://{}", metrics_listener.local_addr()?);
    let metrics_server = tokio::spawn(crate::metrics::serve(
        metrics_listener,
        state.clone(),
        shutdown.clone(),
    ));

    let export_tls = export_tls_config(&prepared.server_chain_pem, &prepared.server_key_pem)?;
    let export_server = tokio::spawn(crate::export::http::serve(
        export_listener,
        export_tls,
        exports.clone(),
        shutdown.clone(),
    ));
    let export_sweeper = tokio::spawn({
        let (exports, shutdown) = (exports.clone(), shutdown.clone());
        async move {
            loop {
                if let Err(e) = exports.sweep().await {
                    tracing::warn!(error = %e, "export sweep failed; trying again in an hour");
                }
                tokio::select! {
                    () = shutdown.wait() => return,
                    () = tokio::time::sleep(EXPORT_SWEEP_EVERY) => {}
                }
            }
        }
    });
    // Exports a killed scheduler left half-done are finished now; their nodes never start.
    exports.resume(state.clone()).await?;
    datadir::write_public(&paths.export_uri(), &format!("{export_base}\n"))?;
    datadir::write_public(&paths.metrics_uri(), &format!("{metrics_uri}\n"))?;
    datadir::write_public(&paths.grpc_uri(), &format!("{uri}\n"))?;
    print_banner(&paths, &uri, &config, &chain);

    // Graceful shutdown waits for open connections to finish, and a client may hold one
    // open for ever (a signer's stream, an idle channel); after a grace period, stop anyway.
    let grace = config.shutdown_grace;
    let result = tokio::select! {
        r = async { tokio::try_join!(grpc, admin) } => r.map(|_| ()),
        () = async { shutdown.wait().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_secs = grace.as_secs(), "connections still open after the grace period; closing them");
            Ok(())
        }
    };
    let _ = std::fs::remove_file(paths.grpc_uri());
    let _ = std::fs::remove_file(paths.export_uri());
    let _ = std::fs::remove_file(paths.metrics_uri());
    export_sweeper.abort();
    let _ = metrics_server.await;
    let _ = export_server.await;
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(paths.admin_token());
    state.nodes.stop_all().await;
    let _ = events_stop.send(());
    let _ = events.await;
    let _ = std::fs::remove_file(&events_socket);
    chain_watch.abort();
    chain.stop().await?;
    result.context("gRPC server failed")?;
    if shutdown.failed() {
        bail!("the scheduler stopped because it could not go on (the log says why)");
    }
    tracing::info!("scheduler stopped");
    Ok(())
}

/// The export server's TLS: the scheduler's own certificate, and no client certificate
/// asked (whoever holds an export's URL may download it, from a browser too).
fn export_tls_config(chain_pem: &str, key_pem: &str) -> Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("the scheduler's certificate chain")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("the scheduler's key")?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the export server's TLS")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Opens the database, explaining the usual reasons it cannot be.
pub fn open_store(paths: &Paths, network: Option<&str>) -> Result<Store> {
    if paths.state_database().exists() {
        let url_file = std::fs::read_to_string(paths.state_database())?;
        return open_postgres(Path::new(url_file.trim()), network);
    }
    let path = paths.database();
    let store = Store::open(&path, network).map_err(|e| match e {
        OpenError::Locked => anyhow!(
            "{} is in use: is another scheduler running with data directory {}?",
            path.display(),
            paths.dir.display()
        ),
        other => anyhow!(other),
    })?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(store)
}

/// The store on the PostgreSQL database whose URL `url_file` holds.
fn open_postgres(url_file: &Path, network: Option<&str>) -> Result<Store> {
    let url = std::fs::read_to_string(url_file)
        .with_context(|| format!("cannot read {}", url_file.display()))?;
    let config =
        skylight_postgres::parse(&url).map_err(|e| anyhow!("{}: {e}", url_file.display()))?;
    Store::open_postgres(config, network)
        .map_err(|e| anyhow!("the scheduler's database ({}): {e}", url_file.display()))
}

/// The running scheduler's store, as `config` says, and the lock that makes it the only
/// scheduler on its data directory (redb's own lock, or `scheduler.lock` with PostgreSQL).
/// A directory never changes where its state is: moving it is not built, so a directory
/// with a redb database is refused PostgreSQL and one marked for PostgreSQL is refused
/// without it.
fn open_running_store(config: &Config, paths: &Paths) -> Result<(Store, Option<std::fs::File>)> {
    let network = Some(config.network.as_str());
    let Some(url_file) = &config.state_database_url_file else {
        if paths.state_database().exists() {
            bail!(
                "{} keeps the scheduler's state in PostgreSQL ({} says where): pass \
                 --state-database-url-file",
                paths.dir.display(),
                paths.state_database().display()
            );
        }
        return Ok((open_store(paths, network)?, None));
    };
    if paths.database().exists() {
        bail!(
            "{} holds the scheduler's state in {}; moving it into PostgreSQL is not built: \
             run without --state-database-url-file, or use a new data directory",
            paths.dir.display(),
            paths.database().display()
        );
    }
    let lock = std::fs::File::create(paths.lock())?;
    if lock.try_lock().is_err() {
        bail!(
            "{} is in use: is another scheduler running with data directory {}?",
            paths.lock().display(),
            paths.dir.display()
        );
    }
    let store = open_postgres(url_file, network)?;
    let url_file = std::path::absolute(url_file)?;
    datadir::write_public(
        &paths.state_database(),
        &format!("{}\n", url_file.display()),
    )?;
    Ok((store, Some(lock)))
}

fn print_banner(paths: &Paths, uri: &str, config: &Config, chain: &Chain) {
    println!("Skylight scheduler listening on {uri} ({})", config.network);
    println!("Data directory: {}", paths.dir.display());
    println!(
        "Invite codes are {} to register.",
        if config.require_invite {
            "required"
        } else {
            "not required"
        }
    );
    println!("Point Greenlight clients and signer-cli at it with:");
    println!("  export GL_SCHEDULER_GRPC_URI={uri}");
    println!("  export GL_CA_CRT={}", paths.ca_cert().display());
    println!("  export GL_NOBODY_CRT={}", paths.nobody_cert().display());
    println!("  export GL_NOBODY_KEY={}", paths.nobody_key().display());
    if chain.is_embedded() {
        println!("Embedded regtest chain: {} (bitcoind JSON-RPC)", chain.rpc);
    } else {
        println!("Chain: bitcoind JSON-RPC at {}", chain.rpc);
    }
}
