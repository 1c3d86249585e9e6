//! Confining node-host's file access with Landlock before it runs anything that talks to
//! the network.
//!
//! A node-host runs as the scheduler's user, so without confinement a bug in its peer
//! handling would reach the root and tenant CA keys, the scheduler's database and every
//! other tenant's node directory. Landlock (Linux 5.13 and later, unprivileged) lets the
//! process give up, for itself and every thread it starts afterwards, all file access but
//! what is listed here:
//!
//! - its own node directory, read and write;
//! - the directory of the chain's cookie file, read only (bitcoind rewrites the cookie as
//!   a new file at each start, so the file alone would not do), and likewise those of the
//!   node-state database's URL file and of the CA file it names;
//! - the machine's trusted root certificates (public), for TLS to that database;
//! - the system files a process needs to resolve host names and load libraries (`/etc`'s
//!   resolver files, `/usr`, `/lib`), `/proc/self`, the CPU and cgroup files tokio reads,
//!   and `/dev/null` and `/dev/urandom`;
//! - in tests only, the faults file.
//!
//! Where the kernel has Landlock's scopes (Linux 6.12+), node-host also may not signal a
//! process outside its own domain (the scheduler, other node-hosts) nor reach their
//! abstract unix sockets; ptrace of processes outside the domain is refused by every
//! Landlock version. Sockets by path are not files to Landlock: node-host still reaches
//! the scheduler's events socket and the network. Confinement happens in `main`, before the first thread: Landlock
//! restricts the calling thread and the threads it starts from then on, never ones
//! already running.

use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope,
};

/// How strictly node-host is confined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Isolation {
    /// Confined where the kernel has Landlock; where it has not, said in the log and run
    /// unconfined.
    #[default]
    BestEffort,
    /// Confined, or not started at all.
    Required,
    /// Not confined (for debugging).
    Off,
}

impl Isolation {
    /// Its name on a command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::BestEffort => "best-effort",
            Isolation::Required => "required",
            Isolation::Off => "off",
        }
    }
}

/// How far the confinement went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confined {
    /// Every access right asked for is enforced.
    Fully,
    /// The kernel's Landlock is older than this program's: some rights are enforced.
    Partly,
    /// No Landlock on this kernel (or isolation off): not confined.
    Not,
}

/// The Landlock version whose file rights are asked for; newer kernels enforce them all,
/// older ones as many as they know.
const ABI_ASKED: ABI = ABI::V5;

/// Read-only system paths every node-host may need; the missing ones are skipped.
const SYSTEM_READ: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/localtime",
    "/etc/ld.so.cache",
    "/usr",
    "/lib",
    "/lib64",
    "/proc/self",
    "/sys/fs/cgroup",
    "/sys/devices/system/cpu",
    "/dev/urandom",
    // The machine's trusted roots (public certificates), for TLS to the node-state
    // database when its URL names no CA file of its own.
    "/etc/ssl/certs",
    "/etc/pki/tls/certs",
    "/etc/pki/ca-trust",
    "/etc/ca-certificates",
];

/// What node-host reads outside its node directory: the chain cookie's directory, the state
/// database URL file's and that of the CA file the URL names (a node-host the scheduler
/// starts has both in its node directory), and in tests the faults file's.
pub fn outside_reads(config: &crate::config::Config) -> Vec<PathBuf> {
    let faults = std::env::var_os(crate::signer_link::faults::FAULTS_ENV).map(PathBuf::from);
    let database_ca = config
        .state_database_url_file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|url| skylight_postgres::parse(&url).ok())
        .and_then(|c| c.root_file().map(Path::to_path_buf));
    [
        config.bitcoind_cookie.clone(),
        config.state_database_url_file.clone(),
        database_ca,
        faults,
    ]
    .into_iter()
    .flatten()
    .filter_map(|f| f.parent().map(Path::to_path_buf))
    .collect()
}

/// For the isolation tests: each `try-read <path>` line of the faults file (see
/// `signer_link::faults`) makes node-host, once confined, try to read `<path>` and log
/// whether it could; `try-signal-parent` makes it ask whether it may signal the process
/// that started it (signal 0: a permission check that delivers nothing).
pub fn probe() {
    let Some(file) = std::env::var_os(crate::signer_link::faults::FAULTS_ENV) else {
        return;
    };
    let lines = std::fs::read_to_string(&file).unwrap_or_default();
    if lines.lines().any(|l| l.trim() == "try-signal-parent") {
        // SAFETY: getppid cannot fail; kill with signal 0 only checks permission.
        let (parent, r) = unsafe {
            let parent = libc::getppid();
            (parent, libc::kill(parent, 0))
        };
        if r == 0 {
            tracing::warn!(parent, "isolation probe: may signal its parent");
        } else {
            let e = std::io::Error::last_os_error();
            tracing::info!(parent, error = %e, "isolation probe: may not signal its parent");
        }
    }
    for path in lines
        .lines()
        .filter_map(|l| l.trim().strip_prefix("try-read "))
    {
        match std::fs::read(path) {
            Ok(bytes) => {
                tracing::warn!(path, bytes = bytes.len(), "isolation probe: read the file")
            }
            Err(e) => tracing::info!(path, error = %e, "isolation probe: could not read the file"),
        }
    }
}

/// Says in the log how far `confine` went.
pub fn report(level: Isolation, confined: Confined) {
    match (confined, level) {
        (Confined::Fully, _) => tracing::info!("confined to the node directory (Landlock)"),
        (Confined::Partly, _) => tracing::info!(
            "confined to the node directory (Landlock; this kernel enforces only some of the rights asked)"
        ),
        (Confined::Not, Isolation::Off) => tracing::warn!("not confined: --isolation off"),
        (Confined::Not, _) => tracing::warn!(
            "this kernel has no Landlock: node-host is not confined and can read every file its user can"
        ),
    }
}

/// Gives up every file access but the node directory `data_dir` and what `also_read`
/// names (read only; a file's directory is given, see the module's notes).
pub fn confine(
    level: Isolation,
    data_dir: &Path,
    also_read: &[PathBuf],
) -> Result<Confined, String> {
    if level == Isolation::Off {
        return Ok(Confined::Not);
    }
    let compat = match level {
        Isolation::Required => CompatLevel::HardRequirement,
        _ => CompatLevel::BestEffort,
    };
    let read = AccessFs::from_read(ABI_ASKED);
    let all = AccessFs::from_all(ABI_ASKED);
    let mut ruleset = Ruleset::default()
        // Hard requirement means: fail if the kernel cannot enforce Landlock at all; a
        // right a kernel does not know (older ABI) is still best effort.
        .set_compatibility(compat)
        .handle_access(AccessFs::from_all(ABI::V1))
        .and_then(|r| {
            r.set_compatibility(CompatLevel::BestEffort)
                .handle_access(all)
        })
        // Linux 6.12+ (ABI 6): no signals to processes outside this node-host (the
        // scheduler, other tenants' node-hosts), and no abstract unix sockets of theirs.
        .and_then(|r| r.scope(Scope::from_all(ABI::V6)))
        .and_then(|r| r.create())
        .map_err(|e| format!("Landlock: {e}"))?;
    let mut add = |path: &Path, access| -> Result<(), String> {
        let Ok(fd) = PathFd::new(path) else {
            return Ok(()); // Not on this system: nothing to allow.
        };
        ruleset
            .as_mut()
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|e| format!("Landlock rule for {}: {e}", path.display()))?;
        Ok(())
    };
    add(data_dir, all)?;
    add(Path::new("/dev/null"), all)?;
    for p in SYSTEM_READ {
        add(Path::new(p), read)?;
    }
    for p in also_read {
        add(p, read)?;
    }
    let status = ruleset
        .restrict_self()
        .map_err(|e| format!("Landlock: {e}"))?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => Confined::Fully,
        RulesetStatus::PartiallyEnforced => Confined::Partly,
        RulesetStatus::NotEnforced => Confined::Not,
    })
}
