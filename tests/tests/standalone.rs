//! An exported node run by its owner: two tenants with a channel and payments both ways;
//! A exports (`signer-cli export`), runs the export with `node-host standalone` on the same
//! chain, attaches its signer to it alone (`signer-cli run --node`), and pays B and is paid
//! by B over the same channel; the same export is refused over the node that has run, and
//! anywhere else, while the node itself starts again from its own directory.

use std::collections::BTreeMap;
use std::path::Path;

use skylight_test_support::pair::{Pair, Tenant, invoice, paid};
use skylight_test_support::{SignerCli, StandaloneNode, eventually, standalone_refused};

/// `signer-cli node --node <uri> <args>` for A's standalone node: its JSON answer, or
/// `None` if the call failed.
fn direct(cli: &SignerCli, uri: &str, args: &[&str]) -> Option<serde_json::Value> {
    let mut all = vec!["node", "--node", uri];
    all.extend_from_slice(args);
    let r = cli.run(&all).unwrap();
    r.ok.then(|| r.json())
}

/// The channel as `json` (a listpeerchannels answer) shows it: open and its peer connected.
fn open_and_connected(json: &serde_json::Value) -> bool {
    let c = &json["channels"][0];
    c["state"] == "ChanneldNormal" && c["peer_connected"] == true
}

/// Every file under `dir` with its contents, to show a refused import touched nothing.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn pay_both_ways_hosted(a: &Tenant, b: &Tenant) {
    let to_b = invoice(b, 10_000_000, "hosted: A pays B");
    a.call(&["pay", &to_b]);
    eventually("B is paid while both are hosted", || {
        paid(b, "hosted: A pays B")
    });
    let to_a = invoice(a, 2_000_000, "hosted: B pays A");
    b.call(&["pay", &to_a]);
    eventually("A is paid while both are hosted", || {
        paid(a, "hosted: B pays A")
    });
}

#[test]
fn an_exported_node_runs_standalone_with_its_channel_and_its_export_is_never_imported_twice() {
    let pair = Pair::with_channel();
    let (a, b) = (&pair.a, &pair.b);
    pay_both_ways_hosted(a, b);
    let channel_id = a.call(&["listpeerchannels"])["channels"][0]["channel_id"].clone();

    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("export");
    let r = a
        .cli
        .run(&["export", export.to_str().unwrap(), "--yes"])
        .unwrap();
    assert!(r.ok, "signer-cli export failed: {}", r.stderr);
    a.stop_signer();

    // The export runs on A's machine: imported once, its signer attached to it alone.
    let (node_dir, imports) = (tmp.path().join("node"), tmp.path().join("imports"));
    let started = std::time::Instant::now();
    let mut node = StandaloneNode::start(&pair.s, &node_dir, &imports, Some(&export)).unwrap();
    let uri = node.uri.clone();
    let signer = a.cli.spawn(&["run", "--node", &uri]).unwrap();
    eventually("A's standalone node has its channel to B back", || {
        direct(&a.cli, &uri, &["listpeerchannels"]).is_some_and(|c| open_and_connected(&c))
    });
    eprintln!(
        "import, start and channel back with the peer took {:?}",
        started.elapsed()
    );
    let info = direct(&a.cli, &uri, &["getinfo"]).unwrap();
    assert_eq!(info["id"], a.cli.node_id().as_str());
    let channels = direct(&a.cli, &uri, &["listpeerchannels"]).unwrap();
    assert_eq!(
        channels["channels"][0]["channel_id"], channel_id,
        "the same channel"
    );
    assert_eq!(channels["channels"][0]["peer_id"], pair.b_id.as_str());

    let to_b = invoice(b, 3_000_000, "standalone: A pays B");
    direct(&a.cli, &uri, &["pay", &to_b]).expect("A pays B from the standalone node");
    eventually("B is paid by the standalone node", || {
        paid(b, "standalone: A pays B")
    });
    let to_a = direct(
        &a.cli,
        &uri,
        &[
            "invoice",
            "--amount-msat",
            "1000000",
            "--label",
            "standalone: B pays A",
        ],
    )
    .unwrap()["bolt11"]
        .as_str()
        .unwrap()
        .to_string();
    b.call(&["pay", &to_a]);
    eventually("the standalone node is paid by B", || {
        direct(&a.cli, &uri, &["listinvoices"]).is_some_and(|l| {
            l["invoices"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["label"] == "standalone: B pays A" && i["status"] == "paid")
        })
    });
    node.stop().unwrap();
    let log = std::fs::read_to_string(skylight_test_support::standalone_log(&node_dir)).unwrap();
    assert!(log.contains("export imported"), "{log}");

    // The same export again, over the node that has run: refused, the node untouched.
    let before = snapshot(&node_dir);
    let again = standalone_refused(&pair.s, &node_dir, &imports, Some(&export));
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        said.contains("roll it back") && said.contains("--data-dir"),
        "{said}"
    );
    assert_eq!(
        snapshot(&node_dir),
        before,
        "a refused import touched the node"
    );
    // Or anywhere else: a second copy of the node.
    let elsewhere = tmp.path().join("second-copy");
    let twice = standalone_refused(&pair.s, &elsewhere, &imports, Some(&export));
    let said = String::from_utf8_lossy(&twice.stderr);
    assert!(said.contains("second copy"), "{said}");
    assert!(!elsewhere.exists());

    // The node itself starts again from its directory, its channel still open.
    let node = StandaloneNode::start(&pair.s, &node_dir, &imports, None).unwrap();
    drop(signer);
    let _signer = a.cli.spawn(&["run", "--node", &node.uri]).unwrap();
    eventually("the restarted standalone node has its channel", || {
        direct(&a.cli, &node.uri, &["listpeerchannels"]).is_some_and(|c| open_and_connected(&c))
    });
    assert_eq!(
        b.call(&["listpeerchannels"])["channels"][0]["state"],
        "ChanneldNormal",
        "B never saw the channel close"
    );
    assert_eq!(
        skylight_test_support::onchain::mempool(&pair.s),
        Vec::<String>::new(),
        "no commitment was broadcast"
    );
}
