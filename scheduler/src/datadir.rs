//! The data directory: made on first start, read on every later one.
//!
//! ```text
//! ca.pem              root CA certificate: clients trust this (GL_CA_CRT)
//! ca-key.pem          root CA key                                   0600
//! users-ca.pem        users CA (signs tenant CAs and nobody)
//! users-ca-key.pem                                                  0600
//! services-ca.pem     services CA (signs server certificates)
//! services-ca-key.pem                                               0600
//! nobody.crt          nobody certificate + users CA (GL_NOBODY_CRT)
//! nobody-key.pem      nobody key (GL_NOBODY_KEY)                    0600
//! scheduler.crt       server certificate + services CA, reissued at every start
//! scheduler-key.pem                                                 0600
//! scheduler.redb      the database                                  0600
//! state-database      with state in PostgreSQL: where its URL file is (no redb then)
//! scheduler.lock      held by the running scheduler, with state in PostgreSQL
//! admin.sock          operator socket, while running                0600
//! admin.token         what operator commands present on it          0600
//! grpc-uri            where the running scheduler listens
//! chain/              the embedded regtest chain: chain.redb, rpc.cookie (0600), rpc-uri
//! nodes/<node_id>/    one tenant's node-host: certificates, signer state, pid, log
//! export-uri          where the running scheduler serves export downloads
//! metrics-uri         where the running scheduler serves /metrics and /healthz
//! scheduler.toml      the operator's settings, if any (see `config::file`)
//! exports/<node_id>.export  a tenant's sealed export, kept its time    0600
//! ```

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use skylight_certs::{Authority, Validity, names};

use crate::config::Config;
use crate::store::Store;

/// Paths inside a data directory.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The directory.
    pub dir: PathBuf,
}

macro_rules! path_fns {
    ($($(#[$doc:meta])* $name:ident => $file:literal),* $(,)?) => {
        impl Paths {
            $($(#[$doc])* pub fn $name(&self) -> PathBuf { self.dir.join($file) })*
        }
    };
}

path_fns! {
    /// Root CA certificate.
    ca_cert => "ca.pem",
    /// Root CA key.
    ca_key => "ca-key.pem",
    /// Users CA certificate.
    users_ca_cert => "users-ca.pem",
    /// Users CA key.
    users_ca_key => "users-ca-key.pem",
    /// Services CA certificate.
    services_ca_cert => "services-ca.pem",
    /// Services CA key.
    services_ca_key => "services-ca-key.pem",
    /// Nobody certificate chain.
    nobody_cert => "nobody.crt",
    /// Nobody key.
    nobody_key => "nobody-key.pem",
    /// Server certificate chain.
    server_cert => "scheduler.crt",
    /// Server key.
    server_key => "scheduler-key.pem",
    /// Database.
    database => "scheduler.redb",
    /// With the scheduler's state in PostgreSQL: the path of the file holding its URL
    /// (never the URL), so that operator commands find it.
    state_database => "state-database",
    /// Held locked by the running scheduler when its state is in PostgreSQL (redb's own
    /// lock does it otherwise): one scheduler per data directory.
    lock => "scheduler.lock",
    /// Operator socket.
    admin_socket => "admin.sock",
    /// The token every call on the operator socket carries (new at every start).
    admin_token => "admin.token",
    /// Where node-hosts hand over their events.
    events_socket => "events.sock",
    /// The running scheduler's URI.
    grpc_uri => "grpc-uri",
    /// The embedded chain's directory.
    chain_dir => "chain",
    /// The tenants' node directories.
    nodes_dir => "nodes",
    /// Where the running scheduler serves export downloads (`https://host:port`).
    export_uri => "export-uri",
    /// Tenants' sealed exports.
    exports_dir => "exports",
    /// Where the running scheduler serves `/metrics` and `/healthz` (`http://host:port`).
    metrics_uri => "metrics-uri",
}

/// What the server needs from the data directory.
pub struct Prepared {
    /// Paths.
    pub paths: Paths,
    /// Root certificate PEM.
    pub root_pem: String,
    /// The users CA, which signs tenant CAs.
    pub users_ca: Authority,
    /// Server certificate chain and key, PEM.
    pub server_chain_pem: String,
    /// Server key, PEM.
    pub server_key_pem: String,
}

/// Creates the data directory (0700) if needed.
pub fn create(config: &Config) -> Result<Paths> {
    let paths = Paths {
        dir: config.data_dir.clone(),
    };
    fs::create_dir_all(&paths.dir)
        .with_context(|| format!("cannot create data directory {}", paths.dir.display()))?;
    fs::set_permissions(&paths.dir, fs::Permissions::from_mode(0o700))?;
    Ok(paths)
}

/// Makes the CA hierarchy and nobody identity on first start, loads them on later ones, and
/// issues a fresh server certificate for the configured host names.
///
/// Call it only while holding the database open: redb's lock on it is what keeps a second
/// scheduler on the same directory from writing these files at the same time.
/// `has_tenants` says whether the database already holds tenants. With `shared` (a store
/// replicas share), the CA is the one in that store, made there by the first to start.
pub fn prepare(config: &Config, has_tenants: bool, shared: Option<&Store>) -> Result<Prepared> {
    let paths = create(config)?;
    let ca_validity = Validity::days(config.ca_days);

    match shared {
        // Replicas share one CA through the database: the first to start makes it, every
        // other (and any later one on a new directory) takes it from there.
        Some(store) => {
            let mine = match paths.ca_cert().exists() {
                true => Authorities::read(&paths)?,
                false => Authorities::new(ca_validity)?,
            };
            let mine_json = serde_json::to_string(&mine)?;
            let stored = store
                .share_once(CA_KEY, &mine_json)
                .map_err(|e| anyhow::anyhow!("cannot share the CA through the database: {e}"))?;
            if stored != mine_json {
                if paths.ca_cert().exists() {
                    anyhow::bail!(
                        "the CA in {} is not the one in the scheduler's database: this directory \
                         belongs to another deployment; use a new data directory",
                        paths.dir.display()
                    );
                }
                let theirs: Authorities = serde_json::from_str(&stored)?;
                theirs.write(&paths)?;
            } else if !paths.ca_cert().exists() {
                mine.write(&paths)?;
            }
        }
        None if !paths.ca_cert().exists() => {
            if has_tenants {
                // A new CA would orphan every tenant: their CAs hang under the old users CA.
                anyhow::bail!(
                    "{} is missing but {} holds tenants: restore the CA files from a backup rather than \
                     starting a new CA that no registered device would chain to",
                    paths.ca_cert().display(),
                    paths.database().display()
                );
            }
            tracing::info!(dir = %paths.dir.display(), "first start: creating the certificate authority");
            Authorities::new(ca_validity)?.write(&paths)?;
        }
        None => {}
    }

    let root_pem = read(&paths.ca_cert())?;
    let users_ca = Authority::load(
        &read(&paths.users_ca_cert())?,
        &read(&paths.users_ca_key())?,
    )
    .context("cannot load the users CA")?;
    let services = Authority::load(
        &read(&paths.services_ca_cert())?,
        &read(&paths.services_ca_key())?,
    )
    .context("cannot load the services CA")?;

    let mut sans = vec!["localhost".to_string()];
    for host in &config.hostnames {
        if !sans.contains(host) {
            sans.push(host.clone());
        }
    }
    let server = services.issue_leaf(
        names::SCHEDULER_CN,
        &sans,
        Validity::days(config.server_cert_days),
    )?;
    // The server sends its intermediate: clients trust only the root.
    let server_chain_pem = format!("{}{}", server.cert_pem, services.cert_pem());
    write_secret(&paths.server_key(), &server.key_pem)?;
    write_public(&paths.server_cert(), &server_chain_pem)?;

    Ok(Prepared {
        paths,
        root_pem,
        users_ca,
        server_chain_pem,
        server_key_pem: server.key_pem,
    })
}

/// Key of the CA hierarchy in a shared store.
const CA_KEY: &str = "certificate_authority";

/// The CA hierarchy and the nobody identity, as files or as the JSON a shared store keeps.
#[derive(serde::Serialize, serde::Deserialize)]
struct Authorities {
    root_cert: String,
    root_key: String,
    users_cert: String,
    users_key: String,
    services_cert: String,
    services_key: String,
    nobody_cert: String,
    nobody_key: String,
}

impl Authorities {
    /// A new hierarchy: root, users and services CAs, and the nobody identity.
    fn new(validity: Validity) -> Result<Authorities> {
        let root = Authority::new_root(validity)?;
        let users = root.new_child_ca(names::USERS_CA_CN, validity)?;
        let services = root.new_child_ca(names::SERVICES_CA_CN, validity)?;
        // No SAN: the nobody key is handed to everyone, so it must never pass for a server.
        let nobody = users.issue_leaf(names::NOBODY_CN, &[], validity)?;
        Ok(Authorities {
            root_cert: root.cert_pem().to_string(),
            root_key: root.key_pem().to_string(),
            users_cert: users.cert_pem().to_string(),
            users_key: users.key_pem().to_string(),
            services_cert: services.cert_pem().to_string(),
            services_key: services.key_pem().to_string(),
            nobody_cert: format!("{}{}", nobody.cert_pem, users.cert_pem()),
            nobody_key: nobody.key_pem,
        })
    }

    fn read(paths: &Paths) -> Result<Authorities> {
        Ok(Authorities {
            root_cert: read(&paths.ca_cert())?,
            root_key: read(&paths.ca_key())?,
            users_cert: read(&paths.users_ca_cert())?,
            users_key: read(&paths.users_ca_key())?,
            services_cert: read(&paths.services_ca_cert())?,
            services_key: read(&paths.services_ca_key())?,
            nobody_cert: read(&paths.nobody_cert())?,
            nobody_key: read(&paths.nobody_key())?,
        })
    }

    fn write(&self, paths: &Paths) -> Result<()> {
        write_secret(&paths.users_ca_key(), &self.users_key)?;
        write_public(&paths.users_ca_cert(), &self.users_cert)?;
        write_secret(&paths.services_ca_key(), &self.services_key)?;
        write_public(&paths.services_ca_cert(), &self.services_cert)?;
        write_secret(&paths.nobody_key(), &self.nobody_key)?;
        write_public(&paths.nobody_cert(), &self.nobody_cert)?;
        write_secret(&paths.ca_key(), &self.root_key)?;
        // Last: its presence marks the directory as complete.
        write_public(&paths.ca_cert(), &self.root_cert)
    }
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Writes a file readable by its owner only, atomically (temporary file, then rename).
pub fn write_secret(path: &Path, contents: &str) -> Result<()> {
    write_with_mode(path, contents, 0o600)
}

/// Writes a file anyone may read, atomically.
pub fn write_public(path: &Path, contents: &str) -> Result<()> {
    write_with_mode(path, contents, 0o644)
}

fn write_with_mode(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_creates_secret_files_0600_and_a_second_start_keeps_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new(dir.path().join("data"));
        let first = prepare(&config, false, None).unwrap();
        let p = &first.paths;
        for secret in [
            p.ca_key(),
            p.users_ca_key(),
            p.services_ca_key(),
            p.nobody_key(),
            p.server_key(),
        ] {
            let mode = fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", secret.display());
        }
        let dir_mode = fs::metadata(&p.dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let nobody = fs::read_to_string(p.nobody_cert()).unwrap();
        assert_eq!(nobody.matches("BEGIN CERTIFICATE").count(), 2);
        // The nobody key is public knowledge: its certificate names no server.
        let der = skylight_certs::first_der(&nobody).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(cert.subject_alternative_name().unwrap().is_none());
        assert_eq!(
            skylight_certs::subject_cn(&nobody).unwrap(),
            names::NOBODY_CN
        );

        let second = prepare(&config, false, None).unwrap();
        assert_eq!(first.root_pem, second.root_pem);
        assert_eq!(first.users_ca.cert_pem(), second.users_ca.cert_pem());
    }

    #[test]
    fn a_lost_ca_is_not_silently_replaced_while_a_database_exists() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new(dir.path().join("data"));
        let paths = prepare(&config, false, None).unwrap().paths;
        fs::remove_file(paths.ca_cert()).unwrap();
        let err = prepare(&config, true, None).err().unwrap().to_string();
        assert!(err.contains("restore the CA files"), "{err}");
    }

    #[test]
    fn replicas_on_one_store_take_the_first_ones_ca_and_a_directory_with_another_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("shared.redb"), Some("regtest")).unwrap();
        let first = prepare(&Config::new(dir.path().join("a")), false, Some(&store)).unwrap();
        let second = prepare(&Config::new(dir.path().join("b")), false, Some(&store)).unwrap();
        assert_eq!(first.root_pem, second.root_pem);
        assert_eq!(first.users_ca.cert_pem(), second.users_ca.cert_pem());
        let key =
            |d: &str| fs::read_to_string(dir.path().join(d).join("users-ca-key.pem")).unwrap();
        assert_eq!(
            key("a"),
            key("b"),
            "the second signs tenants' CAs as the first does"
        );
        let mode = fs::metadata(dir.path().join("b").join("ca-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "keys taken from the store are written 0600"
        );

        // A directory with a CA of its own is another deployment's.
        let other = Config::new(dir.path().join("c"));
        prepare(&other, false, None).unwrap();
        let err = prepare(&other, false, Some(&store))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("another deployment"), "{err}");
    }
}
