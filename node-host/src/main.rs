//! `node-host`: one process per tenant running its LDK node with remote signing.
//!
//! Not built yet: the issue that schedules node-hosts builds it. Until then this binary says
//! so and fails, rather than pretending to run a node.

fn main() {
    eprintln!(
        "node-host is not built yet in this version of Skylight: the scheduler cannot schedule nodes."
    );
    std::process::exit(2);
}
