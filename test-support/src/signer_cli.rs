//! The real `signer-cli` binary, with a data directory of its own.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::Result;
use skylight_client::tls::TlsIdentity;

use crate::{Scheduler, bin};

/// A `signer-cli` data directory, driven through the binary.
pub struct SignerCli {
    /// Its data directory.
    pub dir: PathBuf,
    env: Vec<(String, String)>,
    /// The directory's owner; a [`SignerCli::sharing`] handle has none.
    _tmp: Option<tempfile::TempDir>,
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

impl Run {
    /// What a call that must succeed printed, as JSON.
    pub fn json(&self) -> serde_json::Value {
        assert!(self.ok, "the call failed: {}", self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

impl SignerCli {
    /// `signer-cli node invoice` for 21 sat, labelled `label`.
    pub fn invoice(&self, label: &str) -> Result<Run> {
        self.run(&[
            "node",
            "invoice",
            "--amount-msat",
            "21000",
            "--label",
            label,
            "--description",
            "coffee",
        ])
    }

    /// A fresh directory, pointed at `scheduler`.
    pub fn new(scheduler: &Scheduler) -> Result<Self> {
        let tmp = tempfile::tempdir()?;
        Ok(SignerCli {
            dir: tmp.path().join("signer"),
            env: scheduler.client_env(),
            _tmp: Some(tmp),
        })
    }

    /// Another handle on the same directory, for another thread; the directory lives as
    /// long as `self`.
    pub fn sharing(&self) -> Self {
        SignerCli {
            dir: self.dir.clone(),
            env: self.env.clone(),
            _tmp: None,
        }
    }

    /// A fresh directory whose device is initialised (a new seed) and registered with
    /// `scheduler` using an invite code the operator mints.
    pub fn registered(scheduler: &Scheduler) -> Result<Self> {
        let cli = SignerCli::new(scheduler)?;
        let init = cli.run(&["init"])?;
        anyhow::ensure!(init.ok, "signer-cli init failed: {}", init.stderr);
        let code = scheduler.invite(1)?.remove(0);
        let r = cli.run(&["register", "--invite", &code])?;
        anyhow::ensure!(r.ok, "signer-cli register failed: {}", r.stderr);
        Ok(cli)
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

    /// Where the processes [`SignerCli::spawn`] starts write their stderr.
    pub fn log(&self) -> PathBuf {
        self.dir.with_file_name("signer-cli.log")
    }

    /// Starts `signer-cli <args>` in the background (killed when the guard drops).
    pub fn spawn(&self, args: &[&str]) -> Result<ChildGuard> {
        // What it says goes to a log beside its data directory, for a failing test to show.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())?;
        let child = Command::new(bin("signer-cli"))
            .arg("--data-dir")
            .arg(&self.dir)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        Ok(ChildGuard(child))
    }

    /// The device credentials it holds.
    pub fn identity(&self) -> TlsIdentity {
        let creds =
            skylight_client::creds::load(&self.dir.join("credentials.gfs")).expect("credentials");
        skylight_client::creds::identity(&creds)
    }

    /// Its node id, hex.
    pub fn node_id(&self) -> String {
        skylight_client::device_dir::Settings::load(&skylight_client::device_dir::DataDir(
            self.dir.clone(),
        ))
        .expect("settings")
        .node_id
    }
}
