//! Two tenants of one scheduler, each with its own `signer-cli run`, on the embedded chain:
//! the fixture the end-to-end scenarios between tenants start from.

use std::path::PathBuf;

use serde_json::Value;

use crate::proxy::Proxy;
use crate::{ChildGuard, Run, Scheduler, SignerCli, eventually};

/// A registered tenant with its signer running.
pub struct Tenant {
    /// Its signer-cli data directory.
    pub cli: SignerCli,
    signer: std::cell::RefCell<Option<ChildGuard>>,
}

impl Tenant {
    /// Registers a tenant with `s`, starts its signer, and waits for its node to run.
    pub fn new(s: &Scheduler) -> Tenant {
        let t = Tenant {
            cli: SignerCli::registered(s).unwrap(),
            signer: None.into(),
        };
        t.wake();
        t
    }

    /// `signer-cli node <args>`: its JSON answer, or `None` if the call failed.
    pub fn try_call(&self, args: &[&str]) -> Option<Value> {
        let mut all = vec!["node"];
        all.extend_from_slice(args);
        let r = self.cli.run(&all).unwrap();
        r.ok.then(|| serde_json::from_str(&r.stdout).unwrap())
    }

    /// `signer-cli node <args>`, which must succeed: its JSON answer.
    pub fn call(&self, args: &[&str]) -> Value {
        let mut all = vec!["node"];
        all.extend_from_slice(args);
        let r: Run = self.cli.run(&all).unwrap();
        assert!(r.ok, "node {args:?} failed: {}", r.stderr);
        serde_json::from_str(&r.stdout).unwrap()
    }

    /// Stops the tenant's signer (as a phone app going to sleep does).
    pub fn stop_signer(&self) {
        self.signer.borrow_mut().take();
    }

    /// Stops the tenant's node-host (SIGTERM) and waits until it has exited: the node is
    /// offline (a node whose signer only sleeps keeps its peers). The next call to the node
    /// starts it again.
    pub fn stop_node(&self, s: &Scheduler) {
        let id = self.cli.node_id();
        let Some(pid) = crate::node_pid(s, &id) else {
            return;
        };
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        eventually("the node-host exits", || !crate::alive(pid));
    }

    /// Starts the tenant's signer again.
    pub fn start_signer(&self) {
        *self.signer.borrow_mut() = Some(self.cli.spawn(&["run"]).unwrap());
    }

    /// Starts the tenant's signer and calls its node, as an app that wakes up does (the
    /// call schedules a node-host that had stopped); returns once the node runs with it.
    pub fn wake(&self) {
        self.start_signer();
        eventually("the node runs with its signer", || {
            self.try_call(&["getinfo"])
                .is_some_and(|i| i.get("warning_lightningd_sync").is_none())
        });
    }

    /// `id@host:port` for peers.
    pub fn address(&self) -> String {
        let i = self.call(&["getinfo"]);
        format!(
            "{}@{}:{}",
            i["id"].as_str().unwrap(),
            i["binding"][0]["address"].as_str().unwrap(),
            i["binding"][0]["port"]
        )
    }
}

/// How A reaches B.
pub enum Dial {
    /// At the address B listens on.
    Direct,
    /// Through a [`Proxy`] in between.
    Proxy,
    /// At B's port on this host name (resolved by A's node).
    Host(String),
}

/// Two tenants of one scheduler: A's wallet funded from the faucet, A connected to B.
pub struct Pair {
    /// The scheduler.
    pub s: Scheduler,
    /// Tenant A.
    pub a: Tenant,
    /// Tenant B.
    pub b: Tenant,
    /// B's node id.
    pub b_id: String,
    /// The faucet's payment to A.
    pub faucet_txid: String,
    /// A's new address the faucet paid.
    pub faucet_addr: String,
    /// The relay A reaches B through, if the pair was made with one.
    pub proxy: Option<Proxy>,
    /// The faults file the node-hosts read (empty: none).
    faults: PathBuf,
    _faults_dir: tempfile::TempDir,
}

impl Pair {
    /// Two tenants: A's wallet funded from the faucet, A connected to B.
    pub fn connected() -> Pair {
        Self::connected_with(&[])
    }

    /// As [`Pair::connected`], the scheduler started with `args`.
    pub fn connected_with(args: &[&str]) -> Pair {
        Self::make(
            |env| Scheduler::start_with_env(args, env).unwrap(),
            Dial::Direct,
        )
    }

    /// As [`Pair::connected`], the scheduler started by `start` (given the environment
    /// its node-hosts need), A dialling B as `dial` says.
    pub fn connected_by(start: impl FnOnce(&[(&str, &str)]) -> Scheduler, dial: Dial) -> Pair {
        Self::make(start, dial)
    }

    /// As [`Pair::with_channel`], A reaching B through a [`Proxy`] (B's address as A knows
    /// it, so A reconnects through it too).
    pub fn with_channel_through_proxy() -> Pair {
        let pair = Self::make(
            |env| Scheduler::start_with_env(&[], env).unwrap(),
            Dial::Proxy,
        );
        pair.fund_channel();
        pair.confirm_channel();
        pair
    }

    fn make(start: impl FnOnce(&[(&str, &str)]) -> Scheduler, dial: Dial) -> Pair {
        // The node-hosts read faults from this file: a scenario makes a node-host misbehave
        // toward its signer as a compromised host could, and the signer must refuse.
        let faults_dir = tempfile::tempdir().unwrap();
        let faults = faults_dir.path().join("faults");
        std::fs::write(&faults, "").unwrap();
        let s = start(&[("SKYLIGHT_NODE_HOST_FAULTS", faults.to_str().unwrap())]);
        let a = Tenant::new(&s);
        let b = Tenant::new(&s);
        let addr = a.call(&["newaddr"])["bech32"].as_str().unwrap().to_string();
        let txid = s.chain(&["fund", &addr, "0.5"]);
        s.chain(&["mine", "1"]);
        eventually("A's wallet sees the confirmed output", || {
            a.call(&["listfunds"])["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o["txid"] == txid.as_str() && o["status"] == "confirmed")
        });
        let (b_id, b_at) = b
            .address()
            .split_once('@')
            .map(|(i, a)| (i.to_string(), a.to_string()))
            .unwrap();
        let proxy = matches!(dial, Dial::Proxy).then(|| Proxy::start(b_at.parse().unwrap()));
        let dialled = match (&proxy, &dial) {
            (Some(p), _) => format!("{b_id}@{}", p.addr),
            (None, Dial::Host(host)) => {
                let port = b_at.rsplit(':').next().unwrap();
                format!("{b_id}@{host}:{port}")
            }
            (None, _) => format!("{b_id}@{b_at}"),
        };
        let connected = a.call(&["connect", &dialled]);
        assert_eq!(connected["direction"], "out");
        eventually("B sees A as a peer", || {
            b.call(&["getinfo"])["num_peers"] == 1
        });
        Pair {
            s,
            a,
            b,
            b_id,
            faucet_txid: txid,
            faucet_addr: addr,
            proxy,
            faults,
            _faults_dir: faults_dir,
        }
    }

    /// As [`Pair::connected`], with a 200,000 sat channel from A to B ready to use.
    pub fn with_channel() -> Pair {
        let pair = Pair::connected();
        pair.fund_channel();
        pair.confirm_channel();
        pair
    }

    /// A opens a 200,000 sat channel to B; returns the funding txid.
    pub fn fund_channel(&self) -> String {
        let opened = self.a.call(&[
            "fundchannel",
            &self.b_id,
            "200000",
            "--feerate-perkw",
            "1000",
        ]);
        opened["txid"].as_str().unwrap().to_string()
    }

    /// Six blocks (B's default minimum depth), and the channel is usable on both sides.
    pub fn confirm_channel(&self) {
        self.s.chain(&["mine", "6"]);
        for (who, t) in [("A", &self.a), ("B", &self.b)] {
            eventually(&format!("{who} sees the channel ready"), || {
                t.call(&["listpeerchannels"])["channels"][0]["state"] == "ChanneldNormal"
            });
        }
    }

    /// With A's signer attached: the channel is back, open and connected, A pays B over it
    /// (invoice `label`), and B never saw it close.
    pub fn channel_still_pays(&self, label: &str) {
        let (a, b) = (&self.a, &self.b);
        eventually("A's channel is back, open and connected", || {
            a.try_call(&["listpeerchannels"]).is_some_and(|c| {
                c["channels"][0]["peer_connected"] == true
                    && c["channels"][0]["state"] == "ChanneldNormal"
            })
        });
        let bolt11 = invoice(b, 100_000, label);
        a.call(&["pay", &bolt11]);
        eventually("the channel still pays", || paid(b, label));
        assert_eq!(
            b.call(&["listpeerchannels"])["channels"][0]["state"],
            "ChanneldNormal",
            "B never saw the channel close"
        );
    }

    /// Makes the node-hosts misbehave as `fault` says (`""`: behave).
    pub fn fault(&self, fault: &str) {
        std::fs::write(&self.faults, fault).unwrap();
    }
}

/// `who` makes an invoice labelled `label` for `msat`; its BOLT11 text.
pub fn invoice(who: &Tenant, msat: u64, label: &str) -> String {
    who.call(&[
        "invoice",
        "--amount-msat",
        &msat.to_string(),
        "--label",
        label,
    ])["bolt11"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Whether `who` holds an invoice labelled `label` that was paid.
pub fn paid(who: &Tenant, label: &str) -> bool {
    who.call(&["listinvoices"])["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["label"] == label && i["status"] == "paid")
}

/// The chain's height.
pub fn height(s: &Scheduler) -> u64 {
    s.chain(&["call", "getblockcount"]).parse().unwrap()
}

/// Waits for `who`'s node to reach the chain's tip.
pub fn synced(s: &Scheduler, who: &Tenant) {
    let tip = height(s);
    eventually("the node reaches the chain's tip", || {
        who.call(&["getinfo"])["blockheight"].as_u64() == Some(tip)
    });
}

/// How many times `who`'s node-host log says `what`.
pub fn log_count(s: &Scheduler, who: &Tenant, what: &str) -> usize {
    std::fs::read_to_string(s.node_dir(&who.cli.node_id()).log())
        .unwrap_or_default()
        .matches(what)
        .count()
}

/// A scenario that fails leaves its node-hosts' logs where they can be read: the temporary
/// directories go with the scheduler.
impl Drop for Pair {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let kept = std::env::temp_dir().join(format!("skylight-failed-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&kept);
        for (name, t) in [("a", &self.a), ("b", &self.b)] {
            let Some(id) = t
                .try_call(&["getinfo"])
                .and_then(|i| i["id"].as_str().map(String::from))
            else {
                continue;
            };
            let log = self.s.node_dir(&id).log();
            let to = kept.join(format!("node-host-{name}.log"));
            if std::fs::copy(&log, &to).is_ok() {
                eprintln!("node-host {name}'s log is kept at {}", to.display());
            }
            let to = kept.join(format!("signer-cli-{name}.log"));
            if std::fs::copy(t.cli.log(), &to).is_ok() {
                eprintln!("signer-cli {name}'s log is kept at {}", to.display());
            }
        }
    }
}
