//! The Python interpreter with the published clients the interop checks run (gl-client,
//! standardwebhooks): `SKYLIGHT_GLCLIENT_PYTHON` (set by `.ci/run`, which installs them),
//! else `.ci/run`'s venv if it has them. A test without one says loudly that its check did
//! not run; with the variable set, a missing module is the test's failure, not a skip.

use std::path::PathBuf;
use std::process::Command;

/// The interpreter that can `import` each of `modules`, if there is one.
pub fn interop_python(modules: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SKYLIGHT_GLCLIENT_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(std::env::var_os("HOME")?).join(".cache/skylight/venv/bin/python");
    let imports = format!("import {}", modules.join(", "));
    let has = Command::new(&venv)
        .args(["-c", &imports])
        .output()
        .is_ok_and(|o| o.status.success());
    has.then_some(venv)
}
