//! A real PostgreSQL server for a test: `initdb` on a temporary directory, `pg_ctl` on a
//! free loopback port, stopped and removed when dropped.
//!
//! PostgreSQL refuses to run as root, and CI runs as root: there the server runs as the
//! `postgres` user (Debian's package makes it) through `runuser`. Where the binaries are
//! absent [`Postgres::start`] says why and gives `None`, so the test can say it skipped;
//! with `SKYLIGHT_REQUIRE_POSTGRES` set (CI sets it) their absence is a failure instead.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian keeps PostgreSQL 15's server binaries, when they are not on `PATH`.
const DEBIAN_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The database user the tests connect as.
pub const USER: &str = "skylight";

/// A running PostgreSQL server.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<&'static str>,
    port: u16,
    password: String,
    /// With TLS: the CA file the server's certificate chains to.
    ca: Option<PathBuf>,
}

fn find_bin() -> Option<PathBuf> {
    if Path::new(DEBIAN_BIN).join("initdb").exists() {
        return Some(PathBuf::from(DEBIAN_BIN));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

impl Postgres {
    /// Starts a server with one database, `skylight`, owned by [`USER`] with a password;
    /// `None` (with the reason printed) where PostgreSQL is not installed.
    pub fn start() -> Option<Postgres> {
        Self::start_maybe_tls(false)
    }

    /// [`Postgres::start`], the server taking TCP connections over TLS only (its
    /// certificate, for 127.0.0.1, from a CA made for it: [`Postgres::ca_file`]); its
    /// URLs say `sslmode=verify-full` with that CA as `sslrootcert`.
    pub fn start_tls() -> Option<Postgres> {
        Self::start_maybe_tls(true)
    }

    fn start_maybe_tls(tls: bool) -> Option<Postgres> {
        let Some(bin) = find_bin() else {
            let why = "PostgreSQL's initdb and pg_ctl are not installed \
                       (Debian: apt-get install postgresql-15)";
            if std::env::var_os("SKYLIGHT_REQUIRE_POSTGRES").is_some() {
                panic!("{why}, and SKYLIGHT_REQUIRE_POSTGRES is set");
            }
            eprintln!("SKIPPED: {why}");
            return None;
        };
        Some(Self::start_with(bin, tls).expect("a PostgreSQL server for the test"))
    }

    fn start_with(bin: PathBuf, tls: bool) -> anyhow::Result<Postgres> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new().prefix("skylight-pg").tempdir()?;
        let run_as = is_root().then_some("postgres");
        // The server's user must reach its directories inside ours.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        std::fs::create_dir(&sock)?;
        let password = hex::encode(bitcoin::secp256k1::rand::random::<[u8; 16]>());
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{password}\n"))?;
        if let Some(user) = run_as {
            std::fs::create_dir(&data)?;
            for p in [&data, &sock, &pwfile] {
                chown(p, user)?;
            }
        }
        let port = free_port()?;
        let mut pg = Postgres {
            dir,
            bin,
            run_as,
            port,
            password,
            ca: None,
        };
        pg.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                USER,
                "--pwfile",
                path_str(&pwfile),
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
            ],
        )?;
        std::fs::remove_file(&pwfile)?;
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 \
             -c fsync=on -c synchronous_commit=on",
            sock.display()
        );
        if tls {
            options.push_str(&pg.serve_tls_only(&data)?);
        }
        let log = pg.dir.path().join("server.log");
        if let Some(user) = run_as {
            std::fs::write(&log, "")?;
            chown(&log, user)?;
        }
        pg.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-o",
                &options,
                "-l",
                path_str(&log),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        pg.run_psql("CREATE DATABASE skylight")?;
        Ok(pg)
    }

    /// Makes the server's certificate and a CA for it, lets TCP clients in over TLS only,
    /// and returns the server options that turn TLS on.
    fn serve_tls_only(&mut self, data: &Path) -> anyhow::Result<String> {
        use std::os::unix::fs::PermissionsExt;
        let validity = skylight_certs::Validity::days(1);
        let ca = skylight_certs::Authority::new_root(validity)?;
        let server = ca.issue_leaf("127.0.0.1", &["127.0.0.1".into()], validity)?;
        let (cert, key) = (data.join("server.crt"), data.join("server.key"));
        std::fs::write(&cert, &server.cert_pem)?;
        std::fs::write(&key, &server.key_pem)?;
        // PostgreSQL refuses a key others can read.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
        if let Some(user) = self.run_as {
            chown(&cert, user)?;
            chown(&key, user)?;
        }
        // TCP only as hostssl: a plaintext connection finds no line that lets it in.
        let hba = data.join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba)?
            .lines()
            .map(|l| match l.strip_prefix("host ") {
                Some(rest) => format!("hostssl {rest}"),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&hba, rules + "\n")?;
        let ca_file = self.dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.cert_pem())?;
        self.ca = Some(ca_file);
        Ok(format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            cert.display(),
            key.display()
        ))
    }

    /// With [`Postgres::start_tls`]: the CA the server's certificate chains to.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let out = self.command(program).args(args).output()?;
        anyhow::ensure!(
            out.status.success(),
            "{program} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    fn run_psql(&self, sql: &str) -> anyhow::Result<()> {
        let psql = self.bin.join("psql");
        let out = Command::new(psql)
            .env("PGPASSWORD", &self.password)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
            .args(["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// The rows `sql` returns from the `skylight` database, each a list of its columns as
    /// text (psql's unaligned output).
    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        let out = Command::new(self.bin.join("psql"))
            .env("PGPASSWORD", &self.password)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
            .args([
                "-d",
                "skylight",
                "-v",
                "ON_ERROR_STOP=1",
                "-AtF",
                "\t",
                "-c",
                sql,
            ])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }

    /// Writes the `skylight` database's URL into an owner-only file in `dir`, as an
    /// operator hands it to the scheduler; returns the file.
    pub fn url_file(&self, dir: &Path) -> PathBuf {
        use std::os::unix::fs::OpenOptionsExt;
        let file = dir.join("database-url");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&file)
            .expect("the URL file");
        std::io::Write::write_all(&mut f, self.url().as_bytes()).expect("the URL written");
        file
    }

    /// A new empty database on this server, and its URL.
    pub fn database(&self, name: &str) -> String {
        self.run_psql(&format!("CREATE DATABASE {name}"))
            .expect("a new database");
        self.url_of(name)
    }

    /// The URL of the `skylight` database (it holds the password: keep it off command
    /// lines, as the product does).
    pub fn url(&self) -> String {
        self.url_of("skylight")
    }

    fn url_of(&self, db: &str) -> String {
        let url = format!(
            "postgres://{USER}:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        );
        match &self.ca {
            Some(ca) => format!("{url}?sslmode=verify-full&sslrootcert={}", ca.display()),
            None => url,
        }
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = self
            .command("pg_ctl")
            .args(["-D", path_str(&data), "-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

fn chown(path: &Path, user: &str) -> anyhow::Result<()> {
    let out = Command::new("chown").arg(user).arg(path).output()?;
    anyhow::ensure!(
        out.status.success(),
        "chown {user} {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Where a benchmark's node-hosts keep their state: `BENCH_NODE_STATE=postgres` puts it
/// in a PostgreSQL server started for the run; otherwise (or `redb`) the node directories.
pub struct BenchNodeState {
    /// The scheduler's arguments that choose it.
    pub args: Vec<String>,
    /// What the choice is called, for the bench's output.
    pub name: &'static str,
    _server: Option<(Postgres, tempfile::TempDir)>,
}

impl BenchNodeState {
    /// The choice `BENCH_NODE_STATE` makes.
    pub fn from_env() -> BenchNodeState {
        match std::env::var("BENCH_NODE_STATE").as_deref() {
            Ok("postgres") => {
                let pg = Postgres::start().expect("BENCH_NODE_STATE=postgres needs PostgreSQL");
                let dir = tempfile::tempdir().expect("a temporary directory");
                let file = pg.url_file(dir.path());
                BenchNodeState {
                    args: vec![
                        "--node-state-database-url-file".into(),
                        file.display().to_string(),
                    ],
                    name: "PostgreSQL",
                    _server: Some((pg, dir)),
                }
            }
            Ok("redb") | Err(_) => BenchNodeState {
                args: Vec::new(),
                name: "redb (the node directory)",
                _server: None,
            },
            Ok(other) => panic!("BENCH_NODE_STATE is redb or postgres, not {other:?}"),
        }
    }
}
