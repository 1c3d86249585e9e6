//! The store's tests run on every backend: each scenario is a function of a [`Place`],
//! and [`on_every_backend!`] makes a test of it for the embedded database and for a real
//! PostgreSQL server the test starts (skipped, saying why, where PostgreSQL is not
//! installed; `.ci/run` installs it and makes its absence a failure).

use skylight_test_support::Postgres;

use super::records::*;
use super::{NewTenant, OpenError, Store};

/// Where a test's state lives; opening it again gives the same state.
pub enum Place {
    /// A redb file in a temporary directory.
    Redb(tempfile::TempDir),
    /// A PostgreSQL server of the test's own.
    Postgres(Postgres),
}

impl Place {
    pub fn redb() -> Place {
        Place::Redb(tempfile::tempdir().unwrap())
    }

    pub fn postgres() -> Option<Place> {
        Postgres::start().map(Place::Postgres)
    }

    /// Opens the store for `network`.
    pub fn open_for(&self, network: Option<&str>) -> Result<Store, OpenError> {
        match self {
            Place::Redb(dir) => Store::open(&dir.path().join("db.redb"), network),
            Place::Postgres(pg) => {
                Store::open_postgres(skylight_postgres::parse(&pg.url()).unwrap(), network)
            }
        }
    }

    /// Opens the store for regtest.
    pub fn open(&self) -> Store {
        self.open_for(Some("regtest")).unwrap()
    }
}

/// A tenant `[n; 33]` to register, with a CA and its first device.
pub fn tenant(n: u8) -> NewTenant {
    let node_id = [n; 33];
    NewTenant {
        node_id,
        record: TenantRecord {
            node_id: hex::encode(node_id),
            network: "regtest".into(),
            signer_version: "v25.05".into(),
            init_msg: String::new(),
            startup_msgs: vec![],
            invite_code: None,
            registered_at: 1,
            upgraded_at: None,
        },
        ca: TenantCaRecord {
            cert_pem: "cert".into(),
            key_pem: "key".into(),
        },
        device_name: "default".into(),
        device: DeviceRecord {
            subject: "s".into(),
            issued_at: 1,
            not_after: 2,
            public_key: String::new(),
            revoked_at: None,
        },
    }
}

/// One test per backend of each scenario named, in modules `redb` and `postgres`.
macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {
        mod redb {
            $(
                #[test]
                fn $scenario() {
                    super::$scenario(&$crate::store::testing::Place::redb())
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $scenario() {
                    let Some(place) = $crate::store::testing::Place::postgres() else {
                        return;
                    };
                    super::$scenario(&place)
                }
            )*
        }
    };
}

pub(crate) use on_every_backend;
