//! Logs for collectors: with `--log-format json` every line the scheduler and its
//! node-hosts write is one JSON object with a level and a message.

use skylight_test_support::{Scheduler, SignerCli};

/// Every line of `text` as JSON; panics naming the first that is not an object with a
/// level and fields.
fn json_lines(what: &str, text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{what} wrote a line that is not JSON ({e}): {l}"));
            assert!(
                v["level"].is_string() && v["fields"].is_object(),
                "{what}: {l}"
            );
            v
        })
        .collect()
}

#[test]
fn with_log_format_json_the_scheduler_and_its_node_hosts_write_one_json_object_a_line() {
    let mut s = Scheduler::start_logged(
        &["--log-format", "json"],
        &[("RUST_LOG", "info,h2=warn,tower=warn,hyper=warn")],
    )
    .unwrap();
    let cli = SignerCli::registered(&s).unwrap();
    assert!(cli.run(&["schedule"]).unwrap().ok);
    let node_log = s.node_dir(&cli.node_id()).log();
    s.stop().unwrap();

    let scheduler = std::fs::read_to_string(s.log().unwrap()).unwrap();
    let lines = json_lines("the scheduler", &scheduler);
    assert!(
        lines.iter().any(|l| l["level"] == "INFO"),
        "the scheduler logged no info line: {scheduler}"
    );
    let node = std::fs::read_to_string(node_log).unwrap();
    let lines = json_lines("the node-host", &node);
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "node-host serving"),
        "{node}"
    );
}
