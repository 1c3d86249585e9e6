//! Greenlight's published client against our scheduler: gl-client (Python, from PyPI) must
//! register, recover and authenticate exactly as it does against Greenlight, and the runes
//! it mints must be ones signer-cli's seed recognises, and its Pay through node-host is
//! approved by signer-cli's signer.
//!
//! The Python interpreter with `glclient` installed is `SKYLIGHT_GLCLIENT_PYTHON` (set by
//! `.ci/run`, which installs gl-client); without it the test looks for `.ci/run`'s venv and
//! otherwise says it did not run. When the variable is set, a missing client is a failure.

use std::path::PathBuf;
use std::process::Command;

use skylight_client::creds;
use skylight_client::runes::{RuneContext, RuneMaster};
use skylight_client::secret::HsmSecret;
use skylight_test_support::{Scheduler, SignerCli};

#[test]
fn greenlight_python_client_registers_recovers_authenticates_manages_webhooks_and_pays_approved_by_its_rune()
 {
    let Some(python) = skylight_test_support::interop_python(&["glclient"]) else {
        eprintln!(
            "gl-client is not installed: this interop check did not run (`bash .ci/run` installs it)"
        );
        return;
    };
    // The script lists the codes a tenant was given to share: the operator gives 3 here.
    let s = Scheduler::start(&["--invites-per-tenant", "3"]).unwrap();
    let codes = s.invite(2).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/glclient_identity.py");
    let made = tempfile::tempdir().unwrap();
    let read_only_key = [vec![4u8], vec![0x22; 64]].concat();
    let out = Command::new(&python)
        .arg(&script)
        .envs(s.client_env())
        .env("INVITE_1", &codes[0])
        .env("INVITE_2", &codes[1])
        .env("GLCLIENT_OUT", made.path())
        .env("READ_ONLY_PUBKEY", hex::encode(&read_only_key))
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "gl-client interop failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("interop ok"));

    // The runes gl-client made are ones signer-cli's seed (the script's, 32 zero bytes)
    // recognises: each allows its own device's calls, and the read-only one reads only.
    let master = RuneMaster::new(&HsmSecret::from_bytes([0; 32]));
    for file in ["registered.gfs", "recovered.gfs"] {
        let device = creds::load(&made.path().join(file)).unwrap();
        assert!(!device.rune.is_empty(), "{file} carries a rune");
        let pem = String::from_utf8(device.key.clone()).unwrap();
        let key = rcgen::KeyPair::from_pem(&pem)
            .unwrap()
            .public_key_raw()
            .to_vec();
        let pay = RuneContext {
            uri: "/cln.Node/Pay".into(),
            pubkey: key,
            time: 0,
        };
        master
            .check(&device.rune, &pay)
            .unwrap_or_else(|e| panic!("{file}: gl-client's rune is refused: {e}"));
    }
    let read_only = std::fs::read_to_string(made.path().join("read_only.rune")).unwrap();
    let by = |uri: &str| RuneContext {
        uri: uri.into(),
        pubkey: read_only_key.clone(),
        time: 0,
    };
    master.check(&read_only, &by("/cln.Node/Getinfo")).unwrap();
    let refused = master.check(&read_only, &by("/cln.Node/Pay")).unwrap_err();
    assert!(refused.contains("method"), "{refused}");

    // gl-client pays through node-host while signer-cli (the same seed, recovered) signs:
    // the signer takes gl-client's rune, so the payment is approved and gets as far as
    // looking for a route to a payee nobody can reach.
    let cli = SignerCli::new(&s).unwrap();
    let init = cli
        .run_with_input(&["init", "--import-secret-hex"], &"00".repeat(32))
        .unwrap();
    assert!(init.ok, "{}", init.stderr);
    let recovered = cli.run(&["recover"]).unwrap();
    assert!(recovered.ok, "{}", recovered.stderr);
    let _signer = cli.spawn(&["run"]).unwrap();
    let out = Command::new(&python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/glclient_pay.py"))
        .envs(s.client_env())
        .env("GLCLIENT_CREDS", made.path().join("registered.gfs"))
        .env("PAY_BOLT11", skylight_test_support::unreachable_invoice())
        .output()
        .expect("run python");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "gl-client's Pay failed:\n{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("RouteNotFound") && !said.contains("signer refused"),
        "approved by the signer, then no route: {said}"
    );
}
