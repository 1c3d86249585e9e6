//! The real `node-host standalone`: an exported node run outside the scheduler, on the
//! scheduler's embedded chain, its log beside its data directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{Scheduler, bin};

/// A running `node-host standalone`, stopped (SIGTERM) when dropped.
pub struct StandaloneNode {
    /// Its data directory.
    pub dir: PathBuf,
    /// Where it serves, `https://localhost:<port>`.
    pub uri: String,
    child: Option<Child>,
}

/// `node-host standalone` on `s`'s chain, for the node in `data_dir`, this user's imports
/// recorded in `imports`, importing `from_export` first if given; serves on any free port.
pub fn standalone_command(
    s: &Scheduler,
    data_dir: &Path,
    imports: &Path,
    from_export: Option<&Path>,
) -> Command {
    let chain = s.dir.join("chain");
    let rpc = std::fs::read_to_string(chain.join("rpc-uri")).expect("the embedded chain's URI");
    let mut cmd = Command::new(bin("node-host"));
    cmd.arg("standalone");
    if let Some(from) = from_export {
        cmd.arg("--from-export").arg(from);
    }
    cmd.arg("--data-dir")
        .arg(data_dir)
        .arg("--imports")
        .arg(imports)
        .args(["--bitcoind-rpc", rpc.trim(), "--bitcoind-cookie"])
        .arg(chain.join("rpc.cookie"))
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn,skylight_node_host=info,ldk=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// Where a standalone node in `data_dir` logs.
pub fn standalone_log(data_dir: &Path) -> PathBuf {
    data_dir.with_file_name("standalone.log")
}

impl StandaloneNode {
    /// Starts it (see [`standalone_command`]); returns once it serves.
    pub fn start(
        s: &Scheduler,
        data_dir: &Path,
        imports: &Path,
        from_export: Option<&Path>,
    ) -> Result<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(standalone_log(data_dir))?;
        let mut child = standalone_command(s, data_dir, imports, from_export)
            .stderr(log)
            .spawn()
            .context("cannot run node-host standalone")?;
        let uri_file = data_dir.join("grpc-uri");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(uri) = std::fs::read_to_string(&uri_file) {
                return Ok(StandaloneNode {
                    dir: data_dir.to_path_buf(),
                    uri: uri.trim().to_string(),
                    child: Some(child),
                });
            }
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(standalone_log(data_dir)).unwrap_or_default();
                bail!("node-host standalone exited at start ({status}): {log}");
            }
            if Instant::now() > deadline {
                bail!("node-host standalone did not serve within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) -> Result<()> {
        match self.child.take() {
            Some(child) => crate::process::terminate(child, "node-host standalone"),
            None => Ok(()),
        }
    }
}

impl Drop for StandaloneNode {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = standalone_log(&self.dir);
            eprintln!(
                "node-host standalone's log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let _ = self.stop();
    }
}

/// Runs `node-host standalone`, which must be refused: what it said. One that starts the
/// node instead is killed after 60 s and fails the test.
pub fn standalone_refused(
    s: &Scheduler,
    data_dir: &Path,
    imports: &Path,
    from_export: Option<&Path>,
) -> Output {
    let mut child = standalone_command(s, data_dir, imports, from_export)
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node-host standalone");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("reap");
            panic!(
                "node-host standalone was not refused, it ran: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("reap");
    assert!(
        !out.status.success(),
        "node-host standalone was not refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
