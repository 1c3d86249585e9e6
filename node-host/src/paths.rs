//! Every file of a node directory, named once. The scheduler prepares the directory and
//! starts node-host in it; node-host keeps its state there. Both go through [`NodeDir`].
//!
//! ```text
//! server.crt          the node server's certificate chain (leaf, tenant CA, users CA)
//! server-key.pem      its key                                                    0600
//! tenant-ca.pem       the tenant's CA: the only client trust anchor
//! grpc-uri            where node-host serves, written once it listens
//! node-host.pid       the process, for the scheduler's supervision
//! node-host.log       what node-host logged
//! ldk.redb            the node's store, all its state: LDK's (channel monitors, manager,
//!                     graph, scorer, sweeper, wallet, peers) and node-host's (the signer's
//!                     state, channel signers' records, invoices, payments, the outbox, the
//!                     channel counter, the receive key, the p2p address; see store::schema)
//!
//! from before, taken into ldk.redb at start (see store::legacy) and removed:
//! ldk/                LDK's file store
//! signer_state.redb, channel_signers.redb, invoices.redb, payments.redb, outbox.redb,
//! next-dbid, receive-auth-key (0600), p2p-addr
//! revoked-devices     the tenant's revoked devices (JSON list of names), from the scheduler
//! bitcoind-auth       the chain's `user:password`, from the scheduler                 0600
//! state-database-url  where the node's state is kept when not here (PostgreSQL), from the
//!                     scheduler                                                  0600
//! state-database-ca.pem  the CA the database's certificate must chain to, when its URL
//!                     names one (sslrootcert), copied by the scheduler
//! state-in-database   written once the node's state is in PostgreSQL: it names the
//!                     database, and a start without it is refused
//!
//! an export's, and a standalone node's (see `standalone`):
//! identity.json       the node's identity and its tenant CA (key included)          0600
//! manifest.json       what the export held: every file's size and SHA-256
//! imported.json       a standalone node's record of the export it was imported from
//! ```

use std::path::{Path, PathBuf};

/// A tenant's node directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDir(PathBuf);

/// Each file's name, in the order of the table above.
pub const FILES: &[&str] = &[
    SERVER_CERT,
    SERVER_KEY,
    TENANT_CA,
    GRPC_URI,
    PID,
    LOG,
    SIGNER_STATE,
    CHANNEL_SIGNERS,
    INVOICES,
    PAYMENTS,
    OUTBOX,
    LDK_STORE,
    LDK,
    NEXT_DBID,
    RECEIVE_AUTH_KEY,
    P2P_ADDR,
    REVOKED_DEVICES,
    BITCOIND_AUTH,
    STATE_DATABASE_URL,
    STATE_DATABASE_CA,
    STATE_IN_DATABASE,
    IDENTITY,
    EXPORT_MANIFEST,
    IMPORTED,
];

const SERVER_CERT: &str = "server.crt";
const SERVER_KEY: &str = "server-key.pem";
const TENANT_CA: &str = "tenant-ca.pem";
const GRPC_URI: &str = "grpc-uri";
const PID: &str = "node-host.pid";
const LOG: &str = "node-host.log";
const SIGNER_STATE: &str = "signer_state.redb";
const CHANNEL_SIGNERS: &str = "channel_signers.redb";
const INVOICES: &str = "invoices.redb";
const PAYMENTS: &str = "payments.redb";
const OUTBOX: &str = "outbox.redb";
const LDK_STORE: &str = "ldk.redb";
const LDK: &str = "ldk";
const NEXT_DBID: &str = "next-dbid";
const STATE_DATABASE_URL: &str = "state-database-url";
const STATE_DATABASE_CA: &str = "state-database-ca.pem";
const STATE_IN_DATABASE: &str = "state-in-database";
const RECEIVE_AUTH_KEY: &str = "receive-auth-key";
const P2P_ADDR: &str = "p2p-addr";
const REVOKED_DEVICES: &str = "revoked-devices";
const BITCOIND_AUTH: &str = "bitcoind-auth";
/// The identity file an export adds to the node's files.
pub const IDENTITY: &str = "identity.json";
/// The export's manifest, written beside the files it lists when unpacked.
pub const EXPORT_MANIFEST: &str = skylight_client::export::archive::MANIFEST;
const IMPORTED: &str = "imported.json";

impl NodeDir {
    /// The node directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        NodeDir(root.into())
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.0
    }

    /// The node server's certificate chain.
    pub fn server_cert(&self) -> PathBuf {
        self.0.join(SERVER_CERT)
    }

    /// The node server's key (secret).
    pub fn server_key(&self) -> PathBuf {
        self.0.join(SERVER_KEY)
    }

    /// The tenant's CA.
    pub fn tenant_ca(&self) -> PathBuf {
        self.0.join(TENANT_CA)
    }

    /// Where node-host serves, once it listens.
    pub fn grpc_uri(&self) -> PathBuf {
        self.0.join(GRPC_URI)
    }

    /// node-host's pid.
    pub fn pid(&self) -> PathBuf {
        self.0.join(PID)
    }

    /// node-host's log.
    pub fn log(&self) -> PathBuf {
        self.0.join(LOG)
    }

    /// The signer's state.
    pub fn signer_state(&self) -> PathBuf {
        self.0.join(SIGNER_STATE)
    }

    /// What node-host knows of each channel's signer.
    pub fn channel_signers(&self) -> PathBuf {
        self.0.join(CHANNEL_SIGNERS)
    }

    /// The invoices.
    pub fn invoices(&self) -> PathBuf {
        self.0.join(INVOICES)
    }

    /// The outgoing payments.
    pub fn payments(&self) -> PathBuf {
        self.0.join(PAYMENTS)
    }

    /// Events raised, until the scheduler stored them.
    pub fn outbox(&self) -> PathBuf {
        self.0.join(OUTBOX)
    }

    /// LDK's store.
    pub fn ldk_store(&self) -> PathBuf {
        self.0.join(LDK_STORE)
    }

    /// LDK's file store, from before `ldk.redb`: taken in at start.
    pub fn ldk(&self) -> PathBuf {
        self.0.join(LDK)
    }

    /// The next channel id for the signer.
    pub fn next_dbid(&self) -> PathBuf {
        self.0.join(NEXT_DBID)
    }

    /// The blinded-path receive key (secret).
    pub fn receive_auth_key(&self) -> PathBuf {
        self.0.join(RECEIVE_AUTH_KEY)
    }

    /// Where the node last listened for peers.
    pub fn p2p_addr(&self) -> PathBuf {
        self.0.join(P2P_ADDR)
    }

    /// The tenant's revoked devices, written by the scheduler.
    pub fn revoked_devices(&self) -> PathBuf {
        self.0.join(REVOKED_DEVICES)
    }

    /// The chain's credentials (secret), written by the scheduler when it has a user and
    /// password for bitcoind.
    pub fn bitcoind_auth(&self) -> PathBuf {
        self.0.join(BITCOIND_AUTH)
    }

    /// The CA certificates the database's certificate must chain to, copied here by the
    /// scheduler when the URL names a file (node-host reads nothing of the operator's).
    pub fn state_database_ca(&self) -> PathBuf {
        self.0.join(STATE_DATABASE_CA)
    }

    /// The URL of the database that keeps the node's state (secret: it holds a password),
    /// written by the scheduler when node state is kept in PostgreSQL.
    pub fn state_database_url(&self) -> PathBuf {
        self.0.join(STATE_DATABASE_URL)
    }

    /// Present once the node's state is in PostgreSQL (it names the database).
    pub fn state_in_database(&self) -> PathBuf {
        self.0.join(STATE_IN_DATABASE)
    }

    /// The node's identity and tenant CA, from its export (secret).
    pub fn identity(&self) -> PathBuf {
        self.0.join(IDENTITY)
    }

    /// The manifest of the export the directory was unpacked from.
    pub fn export_manifest(&self) -> PathBuf {
        self.0.join(EXPORT_MANIFEST)
    }

    /// A standalone node's record of its import.
    pub fn imported(&self) -> PathBuf {
        self.0.join(IMPORTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_has_its_own_name_inside_the_directory() {
        let mut names = FILES.to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FILES.len(), "two files share a name");
        let dir = NodeDir::new("/n");
        let all = [
            dir.server_cert(),
            dir.server_key(),
            dir.tenant_ca(),
            dir.grpc_uri(),
            dir.pid(),
            dir.log(),
            dir.signer_state(),
            dir.channel_signers(),
            dir.invoices(),
            dir.payments(),
            dir.outbox(),
            dir.ldk_store(),
            dir.ldk(),
            dir.next_dbid(),
            dir.receive_auth_key(),
            dir.p2p_addr(),
            dir.revoked_devices(),
            dir.bitcoind_auth(),
            dir.state_database_url(),
            dir.state_database_ca(),
            dir.state_in_database(),
            dir.identity(),
            dir.export_manifest(),
            dir.imported(),
        ];
        assert_eq!(all.len(), FILES.len(), "a file is missing from FILES");
        for (path, name) in all.iter().zip(FILES) {
            assert_eq!(path, &Path::new("/n").join(name));
        }
    }
}
