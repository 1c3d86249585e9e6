//! `scheduler demo`: Skylight end to end for a newcomer, in a temporary directory. A
//! scheduler on its embedded chain, two tenants (Alice and Bob) each with a seed and a
//! signer of their own (`signer-cli`), Alice's wallet funded, a channel to Bob, a payment
//! each way; every step printed as it happens, then the commands to try next.
//!
//! It drives the real programs as a person would (`scheduler run`, `signer-cli`), so what
//! it prints is what those commands do.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The longest any one step may take before the demo gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);

/// A child process stopped when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        // SIGTERM first, as an operator's Ctrl-C: the scheduler stops its node-hosts.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A binary next to this one (cargo and installs put them together).
fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

struct Demo {
    dir: PathBuf,
    scheduler_dir: PathBuf,
    client_env: Vec<(String, String)>,
}

/// One tenant: its signer-cli directory and its running signer.
struct Tenant {
    name: &'static str,
    dir: PathBuf,
    _signer: Running,
}

impl Demo {
    /// `program --data-dir dir args…`: what it printed, or what it said when it failed.
    fn output(&self, program: PathBuf, dir: &Path, args: &[&str]) -> Result<String> {
        let name = program
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let out = Command::new(&program)
            .arg("--data-dir")
            .arg(dir)
            .args(args)
            .envs(self.client_env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", program.display()))?;
        if !out.status.success() {
            bail!(
                "{name} {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn scheduler(&self, args: &[&str]) -> Result<String> {
        self.output(std::env::current_exe()?, &self.scheduler_dir, args)
    }

    fn signer_cli(&self, dir: &Path, args: &[&str]) -> Result<String> {
        self.output(sibling("signer-cli"), dir, args)
    }

    fn node(&self, t: &Tenant, args: &[&str]) -> Result<Value> {
        let mut all = vec!["node"];
        all.extend_from_slice(args);
        let text = self.signer_cli(&t.dir, &all)?;
        serde_json::from_str(&text).with_context(|| format!("node {args:?} answered {text}"))
    }

    fn tenant(&self, name: &'static str) -> Result<Tenant> {
        let dir = self.dir.join(name.to_lowercase());
        self.signer_cli(&dir, &["init"])?;
        self.signer_cli(&dir, &["register"])?;
        let log =
            std::fs::File::create(self.dir.join(format!("{}-signer.log", name.to_lowercase())))?;
        let signer = Command::new(sibling("signer-cli"))
            .arg("--data-dir")
            .arg(&dir)
            .arg("run")
            .envs(self.client_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start signer-cli run")?;
        Ok(Tenant {
            name,
            dir,
            _signer: Running(signer),
        })
    }
}

/// Prints `what`, then a dot a second until `done` answers `Some`; its answer.
fn wait_for<T>(what: &str, mut done: impl FnMut() -> Option<T>) -> Result<T> {
    use std::io::Write;
    print!("  … {what} ");
    let _ = std::io::stdout().flush();
    let start = Instant::now();
    let mut dots = 0;
    loop {
        if let Some(v) = done() {
            println!("({:.1} s)", start.elapsed().as_secs_f64());
            return Ok(v);
        }
        if start.elapsed() > STEP_TIMEOUT {
            println!();
            bail!("{what}: not done after {} s", STEP_TIMEOUT.as_secs());
        }
        if start.elapsed().as_secs() > dots {
            dots += 1;
            print!(".");
            let _ = std::io::stdout().flush();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn step(n: u32, what: &str) {
    println!("{n}. {what}");
}

/// Runs the demo; with `once`, stops and removes everything at the end, else leaves it
/// running until Ctrl-C.
pub fn run(once: bool) -> Result<()> {
    for needed in ["node-host", "signer-cli"] {
        if !sibling(needed).exists() {
            bail!(
                "the demo runs {needed}, which is not beside this scheduler ({}); build every \
                 binary first: cargo build --release --bins",
                sibling(needed).display()
            );
        }
    }
    let tmp = tempfile::Builder::new()
        .prefix("skylight-demo-")
        .tempdir()?;
    let dir = tmp.path().to_path_buf();
    let scheduler_dir = dir.join("scheduler");
    println!("Skylight demo in {}", dir.display());

    step(1, "Starting a scheduler with its embedded regtest chain");
    let log = std::fs::File::create(dir.join("scheduler.log"))?;
    let scheduler = Command::new(std::env::current_exe()?)
        .arg("--data-dir")
        .arg(&scheduler_dir)
        .args([
            "run",
            "--listen",
            "127.0.0.1:0",
            "--chain-rpc-listen",
            "127.0.0.1:0",
            "--export-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--require-invite",
            "false",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let scheduler = Running(scheduler);
    let uri = wait_for("the scheduler answers", || {
        std::fs::read_to_string(scheduler_dir.join("grpc-uri"))
            .ok()
            .map(|u| u.trim().to_string())
    })?;
    println!("     listening on {uri}");
    let p = |f: &str| scheduler_dir.join(f).display().to_string();
    let demo = Demo {
        client_env: vec![
            ("GL_SCHEDULER_GRPC_URI".into(), uri.clone()),
            ("GL_CA_CRT".into(), p("ca.pem")),
            ("GL_NOBODY_CRT".into(), p("nobody.crt")),
            ("GL_NOBODY_KEY".into(), p("nobody-key.pem")),
        ],
        dir: dir.clone(),
        scheduler_dir: scheduler_dir.clone(),
    };

    step(
        2,
        "Registering Alice and Bob, each with a seed and a signer of their own",
    );
    let alice = demo.tenant("Alice")?;
    let bob = demo.tenant("Bob")?;
    for t in [&alice, &bob] {
        let id = wait_for(&format!("{}'s node runs with its signer", t.name), || {
            demo.node(t, &["getinfo"])
                .ok()
                .filter(|i| i.get("warning_lightningd_sync").is_none())
                .and_then(|i| i["id"].as_str().map(str::to_string))
        })?;
        println!("     {}: node {id}", t.name);
    }

    step(
        3,
        "Funding Alice's wallet with 0.5 BTC from the chain's faucet",
    );
    let addr = demo.node(&alice, &["newaddr"])?["bech32"]
        .as_str()
        .context("newaddr gave no address")?
        .to_string();
    let txid = demo.scheduler(&["chain", "fund", &addr, "0.5"])?;
    demo.scheduler(&["chain", "mine", "1"])?;
    wait_for("Alice's wallet sees it confirmed", || {
        demo.node(&alice, &["listfunds"]).ok().and_then(|f| {
            f["outputs"]
                .as_array()?
                .iter()
                .any(|o| o["txid"] == txid.as_str() && o["status"] == "confirmed")
                .then_some(())
        })
    })?;

    step(4, "Alice opens a 200,000 sat channel to Bob");
    let b = demo.node(&bob, &["getinfo"])?;
    let bob_id = b["id"].as_str().context("no id")?.to_string();
    let bob_at = format!(
        "{bob_id}@{}:{}",
        b["binding"][0]["address"].as_str().context("no address")?,
        b["binding"][0]["port"]
    );
    demo.node(&alice, &["connect", &bob_at])?;
    demo.node(
        &alice,
        &["fundchannel", &bob_id, "200000", "--feerate-perkw", "1000"],
    )?;
    demo.scheduler(&["chain", "mine", "6"])?;
    for t in [&alice, &bob] {
        wait_for(&format!("{} sees the channel ready", t.name), || {
            demo.node(t, &["listpeerchannels"])
                .ok()
                .filter(|c| c["channels"][0]["state"] == "ChanneldNormal")
        })?;
    }

    step(
        5,
        "Alice pays Bob 10,000 sat, and Bob pays Alice 2,000 sat back",
    );
    for (payer, payee, sat, label) in [
        (&alice, &bob, 10_000u64, "coffee"),
        (&bob, &alice, 2_000, "change"),
    ] {
        let invoice = demo.node(
            payee,
            &[
                "invoice",
                "--amount-msat",
                &(sat * 1000).to_string(),
                "--label",
                label,
            ],
        )?;
        let bolt11 = invoice["bolt11"].as_str().context("no bolt11")?;
        demo.node(payer, &["pay", bolt11])?;
        wait_for(
            &format!("{} sees {label} ({sat} sat) paid", payee.name),
            || {
                demo.node(payee, &["listinvoices"]).ok().and_then(|l| {
                    l["invoices"]
                        .as_array()?
                        .iter()
                        .any(|i| i["label"] == label && i["status"] == "paid")
                        .then_some(())
                })
            },
        )?;
    }
    println!("Done: two tenants, one channel, a payment each way.");

    let env: String = demo
        .client_env
        .iter()
        .map(|(k, v)| format!("  export {k}={v}\n"))
        .collect();
    println!(
        "\nTry next (in another terminal):\n{env}  signer-cli --data-dir {} node listpeerchannels\n  signer-cli --data-dir {} node listinvoices\n  scheduler --data-dir {} tenant list\n  scheduler --data-dir {} chain tip\n  curl -s $(cat {}/metrics-uri)/metrics | grep skylight_\nLogs: {}",
        alice.dir.display(),
        bob.dir.display(),
        scheduler_dir.display(),
        scheduler_dir.display(),
        scheduler_dir.display(),
        dir.display(),
    );
    if once {
        drop((alice, bob, scheduler));
        println!("Stopped; {} removed.", dir.display());
        return Ok(());
    }
    println!("\nRunning until Ctrl-C; then everything stops and the directory is removed.");
    let (tx, rx) = std::sync::mpsc::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            let _ = tokio::signal::ctrl_c().await;
        });
        let _ = tx.send(());
    });
    let _ = rx.recv();
    drop((alice, bob, scheduler));
    Ok(())
}
