//! Two tenants of one scheduler, each with its own signer-cli, on the embedded chain:
//! the wallet, peers, and (as they are built) channels and payments.

use serde_json::Value;
use skylight_tests::{ChildGuard, Run, Scheduler, SignerCli, eventually};

/// A registered tenant with its signer running.
struct Tenant {
    cli: SignerCli,
    _signer: ChildGuard,
}

impl Tenant {
    fn new(s: &Scheduler) -> Tenant {
        let cli = SignerCli::new(s).unwrap();
        assert!(cli.run(&["init"]).unwrap().ok);
        let code = s.invite(1).unwrap().remove(0);
        let r = cli.run(&["register", "--invite", &code]).unwrap();
        assert!(r.ok, "{}", r.stderr);
        let signer = cli.spawn(&["run"]).unwrap();
        let t = Tenant {
            cli,
            _signer: signer,
        };
        eventually("the node runs with its signer", || {
            t.try_call(&["getinfo"])
                .is_some_and(|i| i.get("warning_lightningd_sync").is_none())
        });
        t
    }

    fn try_call(&self, args: &[&str]) -> Option<Value> {
        let mut all = vec!["node"];
        all.extend_from_slice(args);
        let r = self.cli.run(&all).unwrap();
        r.ok.then(|| serde_json::from_str(&r.stdout).unwrap())
    }

    fn call(&self, args: &[&str]) -> Value {
        let mut all = vec!["node"];
        all.extend_from_slice(args);
        let r: Run = self.cli.run(&all).unwrap();
        assert!(r.ok, "node {args:?} failed: {}", r.stderr);
        serde_json::from_str(&r.stdout).unwrap()
    }

    /// `id@host:port` for peers.
    fn address(&self) -> String {
        let i = self.call(&["getinfo"]);
        format!(
            "{}@{}:{}",
            i["id"].as_str().unwrap(),
            i["binding"][0]["address"].as_str().unwrap(),
            i["binding"][0]["port"]
        )
    }
}

fn chain(s: &Scheduler, args: &[&str]) -> String {
    let mut all = vec!["chain"];
    all.extend_from_slice(args);
    let out = s.command(&all).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_faucet_funds_a_wallet_and_tenants_connect_as_peers() {
    let s = Scheduler::start(&[]).unwrap();
    let a = Tenant::new(&s);
    let b = Tenant::new(&s);

    // The faucet pays A's new address; once mined, ListFunds shows it confirmed.
    let addr = a.call(&["newaddr"])["bech32"].as_str().unwrap().to_string();
    assert!(addr.starts_with("bcrt1q"), "{addr}");
    let txid = chain(&s, &["fund", &addr, "0.5"]);
    chain(&s, &["mine", "1"]);
    eventually("A's wallet sees the confirmed output", || {
        a.call(&["listfunds"])["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["txid"] == txid.as_str() && o["status"] == "confirmed")
    });
    let funds = a.call(&["listfunds"]);
    let out = &funds["outputs"][0];
    assert_eq!(out["amount_msat"], 50_000_000_000u64);
    assert_eq!(out["address"], addr.as_str());
    // Another new address is another address.
    assert_ne!(a.call(&["newaddr"])["bech32"], addr.as_str());

    // A connects to B over the Lightning protocol (each side's handshake is signed by its
    // own signer); both see the other.
    let connected = a.call(&["connect", &b.address()]);
    assert_eq!(connected["direction"], "out");
    eventually("B sees A as a peer", || {
        b.call(&["getinfo"])["num_peers"] == 1
    });
    assert_eq!(a.call(&["getinfo"])["num_peers"], 1);
}
