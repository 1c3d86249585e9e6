//! `node-host`: one tenant's node, started by the scheduler (see [`Config`] for its
//! command line and `app.rs` for what it runs), or, as `node-host standalone`, an exported
//! node run by its owner (see `standalone`).

use std::time::Duration;

use clap::Parser;
use skylight_node_host::app::NodeHost;
use skylight_node_host::config::Config;
use skylight_node_host::isolation;
use skylight_node_host::log_file::RotatingFile;
use skylight_node_host::standalone::{self, Standalone};
use tokio_util::sync::CancellationToken;

/// What is logged when `RUST_LOG` does not say.
const DEFAULT_LOG: &str = "info,h2=warn,tower=warn,hyper=warn";

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let config = if args.get(1).is_some_and(|a| a == "standalone") {
        let standalone = Standalone::parse_from(&args[1..]);
        standalone.log_format.init(DEFAULT_LOG);
        match standalone::prepare(&standalone) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
        }
    } else {
        let config = Config::parse();
        let file = config
            .log_file
            .as_ref()
            .map(|path| RotatingFile::new(path.clone(), config.log_max_bytes));
        config.log_format.init_to(DEFAULT_LOG, file);
        config
    };
    // Before the first thread: Landlock confines this thread and those it starts later.
    let outside = isolation::outside_reads(&config);
    match isolation::confine(config.isolation, &config.data_dir, &outside) {
        Ok(confined) => isolation::report(config.isolation, confined),
        Err(e) => {
            eprintln!(
                "error: node-host cannot confine itself ({e}); --isolation off runs it unconfined"
            );
            std::process::exit(1);
        }
    }
    isolation::probe();
    // Two runtimes: LDK's, whose threads block on the signer, and the one that serves the
    // signer and the API, which must never wait behind them.
    let ldk = runtime("ldk", None);
    let io = runtime("node-io", Some(2));
    let result = ldk.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        NodeHost::start(config, io.handle().clone())?
            .run(shutdown)
            .await
    });
    // A blocking task may still wait on a signer call that was staged before the stop.
    io.shutdown_timeout(Duration::from_secs(2));
    ldk.shutdown_timeout(Duration::from_secs(2));
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn runtime(name: &str, workers: Option<usize>) -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    builder
        .thread_name(name)
        .enable_all()
        .build()
        .expect("cannot start the async runtime")
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    shutdown.cancel();
}
