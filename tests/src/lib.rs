//! Harness for Skylight's end-to-end tests: starts the real binaries on loopback, in
//! temporary directories, on ephemeral ports, and stops them when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use skylight_signer_cli::client::TlsIdentity;

/// Where cargo put the workspace's binaries: next to the `deps` directory holding this test.
/// `SKYLIGHT_BIN_DIR` overrides it.
pub fn bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("SKYLIGHT_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let exe = std::env::current_exe().expect("no current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary outside target/");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds it",
        path.display()
    );
    path
}

/// A running `scheduler run`.
pub struct Scheduler {
    /// Its data directory.
    pub dir: PathBuf,
    /// `https://localhost:<port>`.
    pub uri: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
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
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("scheduler");
        let mut s = Scheduler {
            dir,
            uri: String::new(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
            _tmp: Some(tmp),
        };
        s.launch()?;
        Ok(s)
    }

    fn launch(&mut self) -> Result<()> {
        let uri_file = self.dir.join("grpc-uri");
        let _ = std::fs::remove_file(&uri_file);
        let child = Command::new(bin("scheduler"))
            .arg("--data-dir")
            .arg(&self.dir)
            .arg("run")
            .args([
                "--listen",
                "127.0.0.1:0",
                "--chain-rpc-listen",
                "127.0.0.1:0",
            ])
            .args(&self.args)
            // Node-hosts inherit this: their signer attach/detach lines are what tests read.
            .env("RUST_LOG", "warn,skylight_node_host=info,ldk=info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start scheduler")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(uri) = std::fs::read_to_string(&uri_file) {
                self.uri = uri.trim().to_string();
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
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()?;
            if !status.success() {
                bail!("kill -TERM failed");
            }
            let exit = child.wait()?;
            if !exit.success() {
                bail!("scheduler exited with {exit} on SIGTERM");
            }
        }
        Ok(())
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

    /// Runs a `scheduler` operator command against this data directory.
    pub fn command(&self, args: &[&str]) -> Result<Output> {
        Ok(Command::new(bin("scheduler"))
            .arg("--data-dir")
            .arg(&self.dir)
            .args(args)
            .env("RUST_LOG", "warn")
            .output()?)
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
                    let log = std::fs::read_to_string(node.path().join("node-host.log"))
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

/// A `signer-cli` data directory, driven through the binary.
pub struct SignerCli {
    /// Its data directory.
    pub dir: PathBuf,
    env: Vec<(String, String)>,
    _tmp: tempfile::TempDir,
}

/// A background process, killed and reaped when dropped.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a `signer-cli` run printed.
pub struct Run {
    /// Exit success.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl SignerCli {
    /// A fresh directory, pointed at `scheduler`.
    pub fn new(scheduler: &Scheduler) -> Result<Self> {
        let tmp = tempfile::tempdir()?;
        Ok(SignerCli {
            dir: tmp.path().join("signer"),
            env: scheduler.client_env(),
            _tmp: tmp,
        })
    }

    /// Runs `signer-cli <args>`, with `stdin` as its input.
    pub fn run_with_input(&self, args: &[&str], stdin: &str) -> Result<Run> {
        use std::io::Write;
        let mut child = Command::new(bin("signer-cli"))
            .arg("--data-dir")
            .arg(&self.dir)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child.stdin.take().unwrap().write_all(stdin.as_bytes())?;
        let out = child.wait_with_output()?;
        Ok(Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs `signer-cli <args>`.
    pub fn run(&self, args: &[&str]) -> Result<Run> {
        self.run_with_input(args, "")
    }

    /// Starts `signer-cli <args>` in the background (killed when the guard drops).
    pub fn spawn(&self, args: &[&str]) -> Result<ChildGuard> {
        let child = Command::new(bin("signer-cli"))
            .arg("--data-dir")
            .arg(&self.dir)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(ChildGuard(child))
    }

    /// The device credentials it holds.
    pub fn identity(&self) -> TlsIdentity {
        let creds = skylight_signer_cli::creds::load(&self.dir.join("credentials.gfs"))
            .expect("credentials");
        skylight_signer_cli::creds::identity(&creds)
    }

    /// Its node id, hex.
    pub fn node_id(&self) -> String {
        skylight_signer_cli::config::Settings::load(&skylight_signer_cli::config::DataDir(
            self.dir.clone(),
        ))
        .expect("settings")
        .node_id
    }
}

/// The gRPC status inside an error from signer-cli's library, if the server refused.
pub fn status_of(err: &anyhow::Error) -> Option<&tonic::Status> {
    err.downcast_ref::<skylight_signer_cli::client::Refused>()
        .map(|r| &r.status)
}

/// Whether process `pid` runs (a zombie, exited but not reaped, does not).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// Waits until `cond` holds; fails after a generous bound. This bounds a wait, it does
/// not assert a timing.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The pid of a tenant's node-host, from its pid file.
pub fn node_pid(s: &Scheduler, node_id_hex: &str) -> Option<u32> {
    std::fs::read_to_string(s.dir.join("nodes").join(node_id_hex).join("node-host.pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
}
