//! The real `scheduler` binary, run in a temporary directory on ephemeral ports.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use skylight_client::tls::TlsIdentity;
use skylight_node_host::paths::NodeDir;

use crate::bin;

/// A running `scheduler run`.
pub struct Scheduler {
    /// Its data directory.
    pub dir: PathBuf,
    /// `https://localhost:<port>`.
    pub uri: String,
    /// Where it serves export downloads, `https://localhost:<port>`.
    pub export_uri: String,
    /// Where it serves `/metrics` and `/healthz`, `http://127.0.0.1:<port>`.
    pub metrics_uri: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// An external chain's directory, if it runs on one (else its embedded chain).
    external_chain: Option<PathBuf>,
    /// Where its log goes, if not to the test's output.
    log: Option<PathBuf>,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

impl Scheduler {
    /// Starts a scheduler in a new temporary directory with extra `run` arguments.
    pub fn start(args: &[&str]) -> Result<Self> {
        Self::start_with_env(args, &[])
    }

    /// Starts one with extra `run` arguments and environment variables, which its
    /// node-hosts inherit.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        let mut s = Self::new(args, env)?;
        s.launch()?;
        Ok(s)
    }

    /// Starts one whose chain is `chain`, an external bitcoind to it (the arguments and
    /// environment say how to reach it); its log goes to [`Scheduler::log`].
    pub fn start_on(
        chain: &crate::ExternalChain,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let mut s = Self::new(args, env)?;
        s.external_chain = Some(chain.dir.clone());
        s.log = Some(s._tmp.as_ref().unwrap().path().join("scheduler.log"));
        s.launch()?;
        Ok(s)
    }

    /// Starts one on its embedded chain with extra `run` arguments and environment, its log
    /// going to [`Scheduler::log`].
    pub fn start_logged(args: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        let mut s = Self::new(args, env)?;
        s.log = Some(s._tmp.as_ref().unwrap().path().join("scheduler.log"));
        s.launch()?;
        Ok(s)
    }

    /// Starts one for a benchmark of the server's own speed: no invite codes needed, no
    /// per-caller call limits, warnings only in its log.
    pub fn start_unthrottled() -> Result<Self> {
        Self::start_with_env(
            &[
                "--require-invite",
                "false",
                "--anonymous-calls-per-minute",
                "0",
                "--device-calls-per-minute",
                "0",
            ],
            &[("RUST_LOG", "warn")],
        )
    }

    /// Starts one on its embedded chain whose data directory holds `scheduler.toml` with
    /// `toml` in it; its log goes to [`Scheduler::log`].
    pub fn start_with_file(toml: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        let mut s = Self::new(args, env)?;
        std::fs::create_dir_all(&s.dir)?;
        std::fs::write(s.dir.join("scheduler.toml"), toml)?;
        s.log = Some(s._tmp.as_ref().unwrap().path().join("scheduler.log"));
        s.launch()?;
        Ok(s)
    }

    fn new(args: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        let tmp = tempfile::tempdir()?;
        Ok(Scheduler {
            dir: tmp.path().join("scheduler"),
            uri: String::new(),
            export_uri: String::new(),
            metrics_uri: String::new(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            external_chain: None,
            log: None,
            child: None,
            _tmp: Some(tmp),
        })
    }

    /// Where its log goes, when started with [`Scheduler::start_on`] or
    /// [`Scheduler::start_logged`].
    pub fn log(&self) -> Option<PathBuf> {
        self.log.clone()
    }

    fn launch(&mut self) -> Result<()> {
        let uri_file = self.dir.join("grpc-uri");
        let _ = std::fs::remove_file(&uri_file);
        let export_uri_file = self.dir.join("export-uri");
        // A restart listens where the scheduler listened before, as an operator's would:
        // devices keep the URI they registered with.
        let port = self
            .uri
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or(0);
        // The export server too: the URL ExportNode gave names its port.
        let export_port = self
            .export_uri
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or(0);
        let stderr = match &self.log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
            None => Stdio::inherit(),
        };
        let child = Command::new(bin("scheduler"))
            .arg("--data-dir")
            .arg(&self.dir)
            .arg("run")
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--chain-rpc-listen",
                "127.0.0.1:0",
                "--export-listen",
                &format!("127.0.0.1:{export_port}"),
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .args(&self.args)
            // Node-hosts inherit this: their signer attach/detach lines are what tests read.
            .env("RUST_LOG", "warn,skylight_node_host=info,ldk=info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("cannot start scheduler")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(uri) = std::fs::read_to_string(&uri_file) {
                self.uri = uri.trim().to_string();
                // Written before grpc-uri.
                self.export_uri = std::fs::read_to_string(&export_uri_file)?
                    .trim()
                    .to_string();
                self.metrics_uri = std::fs::read_to_string(self.dir.join("metrics-uri"))?
                    .trim()
                    .to_string();
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait()? {
                bail!("scheduler exited at start: {status}");
            }
            if Instant::now() > deadline {
                bail!("scheduler did not start within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) -> Result<()> {
        match self.child.take() {
            Some(child) => crate::process::terminate(child, "scheduler"),
            None => Ok(()),
        }
    }

    /// Stops it and starts it again on the same data directory.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.launch()
    }

    /// Kills it with SIGKILL (no cleanup at all) and starts it again on the same directory.
    pub fn kill_and_restart(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        self.launch()
    }

    /// `GET <metrics_uri><path>`: the status and the body.
    pub fn http_get(&self, path: &str) -> Result<(u16, String)> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = format!("{}{path}", self.metrics_uri);
        // On a thread of its own: callable from a test's async code and from plain code.
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?
                        .block_on(async {
                            let r = reqwest::get(&url).await?;
                            let status = r.status().as_u16();
                            Ok((status, r.text().await?))
                        })
                })
                .join()
                .expect("the scrape thread panicked")
        })
    }

    /// The value of the sample `series` (a name with its labels as Prometheus writes
    /// them, e.g. `skylight_payments_total{direction="sent"}`) in a scrape of `/metrics`.
    pub fn metric(&self, series: &str) -> Result<Option<f64>> {
        let (status, text) = self.http_get("/metrics")?;
        anyhow::ensure!(status == 200, "/metrics answered {status}: {text}");
        Ok(crate::metric_value(&text, series))
    }

    /// Runs a `scheduler` operator command against this data directory.
    pub fn command(&self, args: &[&str]) -> Result<Output> {
        Ok(Command::new(bin("scheduler"))
            .arg("--data-dir")
            .arg(&self.dir)
            .args(args)
            .env("RUST_LOG", "warn")
            .output()?)
    }

    /// Runs `scheduler chain <args>` against its embedded chain (or `devchain <args>`
    /// against its external one); what it printed, trimmed. Panics with the command's error
    /// if it fails.
    pub fn chain(&self, args: &[&str]) -> String {
        if let Some(dir) = &self.external_chain {
            return crate::devchain::operate(dir, args);
        }
        let mut all = vec!["chain"];
        all.extend_from_slice(args);
        let out = self.command(&all).expect("run scheduler chain");
        assert!(
            out.status.success(),
            "scheduler chain {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Mints invite codes with `scheduler invite create`.
    pub fn invite(&self, count: u32) -> Result<Vec<String>> {
        let out = self.command(&["invite", "create", "--count", &count.to_string()])?;
        if !out.status.success() {
            bail!(
                "invite create failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// The nobody identity clients use.
    pub fn nobody(&self) -> TlsIdentity {
        let read = |f: &str| std::fs::read(self.dir.join(f)).expect("scheduler file");
        TlsIdentity {
            ca_pem: read("ca.pem"),
            cert_pem: read("nobody.crt"),
            key_pem: read("nobody-key.pem"),
        }
    }

    /// The environment Greenlight clients and signer-cli read.
    pub fn client_env(&self) -> Vec<(String, String)> {
        let p = |f: &str| self.dir.join(f).display().to_string();
        vec![
            ("GL_SCHEDULER_GRPC_URI".into(), self.uri.clone()),
            ("GL_CA_CRT".into(), p("ca.pem")),
            ("GL_NOBODY_CRT".into(), p("nobody.crt")),
            ("GL_NOBODY_KEY".into(), p("nobody-key.pem")),
        ]
    }

    /// The node directory of the tenant `node_id_hex`.
    pub fn node_dir(&self, node_id_hex: &str) -> NodeDir {
        NodeDir::new(self.dir.join("nodes").join(node_id_hex))
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // A failing test shows what its node-hosts logged, before the directory goes.
        if std::thread::panicking()
            && let Ok(nodes) = std::fs::read_dir(self.dir.join("nodes"))
        {
            {
                for node in nodes.flatten() {
                    let log = std::fs::read_to_string(NodeDir::new(node.path()).log())
                        .unwrap_or_default();
                    // The first panic is the one that matters; the tail may only show
                    // what it poisoned.
                    let lines: Vec<&str> = log.lines().collect();
                    if let Some(first) = lines.iter().position(|l| l.contains("panicked at")) {
                        eprintln!(
                            "--- node-host {} (first panic) ---",
                            node.file_name().display()
                        );
                        for line in lines.iter().skip(first.saturating_sub(5)).take(40) {
                            eprintln!("{line}");
                        }
                    }
                    let tail: Vec<&str> = log.lines().rev().take(80).collect();
                    eprintln!(
                        "--- node-host {} (last lines) ---",
                        node.file_name().display()
                    );
                    for line in tail.iter().rev() {
                        eprintln!("{line}");
                    }
                }
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The value of `series` in Prometheus' text format, if it is there: each sample line is
/// the series (name and labels) then its value.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(s, _)| s.trim() == series)
        .and_then(|(_, v)| v.trim().parse().ok())
}
