//! A `devchain run` process of its own, standing in for an operator's external bitcoind:
//! its cookie rewritten at every start as bitcoind's is, optionally a user and password,
//! stopped and started again where it was.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::bin;

/// The environment variable `devchain run` reads its `--rpc-user`'s password from.
const PASSWORD_ENV: &str = "DEVCHAIN_RPC_PASSWORD";

/// A running `devchain run`.
pub struct ExternalChain {
    /// Its chain directory.
    pub dir: PathBuf,
    /// Where its JSON-RPC listens (kept across restarts).
    pub port: u16,
    user: Option<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    _tmp: tempfile::TempDir,
}

impl ExternalChain {
    /// A new chain (101 blocks to its faucet) authenticating with its cookie only.
    pub fn start() -> Result<Self> {
        Self::start_with(None)
    }

    /// A new chain that also accepts `user` with `password` (given to it in its
    /// environment, as an operator would keep it off the command line).
    pub fn start_with_user(user: &str, password: &str) -> Result<Self> {
        Self::start_with(Some((user.to_string(), password.to_string())))
    }

    fn start_with(user: Option<(String, String)>) -> Result<Self> {
        let tmp = tempfile::tempdir()?;
        let mut chain = ExternalChain {
            dir: tmp.path().join("chain"),
            port: 0,
            user,
            log: tmp.path().join("devchain.log"),
            child: None,
            _tmp: tmp,
        };
        std::fs::create_dir_all(&chain.dir)?;
        chain.launch()?;
        Ok(chain)
    }

    fn launch(&mut self) -> Result<()> {
        let uri_file = self.dir.join("rpc-uri");
        let _ = std::fs::remove_file(&uri_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut cmd = Command::new(bin("devchain"));
        cmd.arg("--data-dir")
            .arg(&self.dir)
            .args(["run", "--listen", &format!("127.0.0.1:{}", self.port)])
            .env_remove(PASSWORD_ENV)
            .stdout(Stdio::null())
            .stderr(log);
        if let Some((user, password)) = &self.user {
            cmd.args(["--rpc-user", user]).env(PASSWORD_ENV, password);
        }
        self.child = Some(cmd.spawn().context("cannot start devchain")?);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(uri) = std::fs::read_to_string(&uri_file)
                && let Some(port) = uri.trim().rsplit(':').next().and_then(|p| p.parse().ok())
            {
                self.port = port;
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait()? {
                bail!("devchain exited at start: {status}");
            }
            if Instant::now() > deadline {
                bail!("devchain did not start within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://127.0.0.1:<port>`, without credentials.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its cookie file (rewritten at every start).
    pub fn cookie(&self) -> PathBuf {
        self.dir.join("rpc.cookie")
    }

    /// What it logged.
    pub fn log(&self) -> PathBuf {
        self.log.clone()
    }

    /// Stops it with SIGTERM and waits for it.
    pub fn stop(&mut self) -> Result<()> {
        match self.child.take() {
            Some(child) => crate::process::terminate(child, "devchain"),
            None => Ok(()),
        }
    }

    /// Starts it again on the same directory and port, with a new cookie.
    pub fn start_again(&mut self) -> Result<()> {
        self.launch()
    }

    /// Runs a `devchain` operator command (`mine 6`, `fund <addr> 0.5`, …) against it;
    /// what it printed, trimmed. Panics with the command's error if it fails.
    pub fn run(&self, args: &[&str]) -> String {
        operate(&self.dir, args)
    }
}

/// `devchain --data-dir <dir> <args>`: what it printed, trimmed; panics if it fails.
pub(crate) fn operate(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(bin("devchain"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run devchain");
    assert!(
        out.status.success(),
        "devchain {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Drop for ExternalChain {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Every process's command line that holds `secret`, as `pid: command line` (any local
/// user can read these in `/proc`).
pub fn command_lines_holding(secret: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
            let line = String::from_utf8_lossy(&raw).replace('\0', " ");
            if line.contains(secret) {
                found.push(format!("{pid}: {line}"));
            }
        }
    }
    found
}
