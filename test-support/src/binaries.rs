//! The workspace's binaries, as cargo built them for this test or bench.

use std::path::{Path, PathBuf};

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
