//! Greenlight's published client against our scheduler: gl-client (Python, from PyPI) must
//! register, recover and authenticate exactly as it does against Greenlight.
//!
//! The Python interpreter with `glclient` installed is `SKYLIGHT_GLCLIENT_PYTHON` (set by
//! `.ci/run`, which installs gl-client); without it the test looks for `.ci/run`'s venv and
//! otherwise says it did not run. When the variable is set, a missing client is a failure.

use std::path::PathBuf;
use std::process::Command;

use skylight_test_support::Scheduler;

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SKYLIGHT_GLCLIENT_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(std::env::var_os("HOME")?).join(".cache/skylight/venv/bin/python");
    let has_client = Command::new(&venv)
        .args(["-c", "import glclient"])
        .output()
        .is_ok_and(|o| o.status.success());
    has_client.then_some(venv)
}

#[test]
fn greenlight_python_client_registers_recovers_and_authenticates() {
    let Some(python) = python() else {
        eprintln!(
            "gl-client is not installed: this interop check did not run (`bash .ci/run` installs it)"
        );
        return;
    };
    let s = Scheduler::start(&[]).unwrap();
    let codes = s.invite(2).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/glclient_identity.py");
    let out = Command::new(&python)
        .arg(&script)
        .envs(s.client_env())
        .env("INVITE_1", &codes[0])
        .env("INVITE_2", &codes[1])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "gl-client interop failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("interop ok"));
}
