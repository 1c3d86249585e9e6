//! The signer's data directory.
//!
//! ```text
//! hsm_secret        the 32-byte node secret                     0600
//! signer.json       network, node id, scheduler URI
//! credentials.gfs   device certificate and key (Greenlight's format)  0600
//! state-marks.json  highest version of each signer state entry seen (rollback guard)  0600
//! state-marks.log   its journal: every change since the file was last written      0600
//! revoked-devices.json  the tenant's revoked devices, by key: their requests count for nothing
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Paths in the data directory.
#[derive(Debug, Clone)]
pub struct DataDir(pub PathBuf);

impl DataDir {
    /// The secret file.
    pub fn secret(&self) -> PathBuf {
        self.0.join("hsm_secret")
    }
    /// The settings file.
    pub fn settings(&self) -> PathBuf {
        self.0.join("signer.json")
    }
    /// The credentials file.
    pub fn credentials(&self) -> PathBuf {
        self.0.join("credentials.gfs")
    }
    /// The highest version of each signer state entry this device has seen.
    pub fn state_marks(&self) -> PathBuf {
        self.0.join("state-marks.json")
    }
    /// The tenant's revoked devices, by the key their runes name.
    pub fn revoked_devices(&self) -> PathBuf {
        self.0.join("revoked-devices.json")
    }
}

/// What the signer remembers besides its secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Settings {
    /// The Bitcoin network.
    pub network: String,
    /// Hex node id.
    pub node_id: String,
    /// The scheduler registered or recovered with.
    #[serde(default)]
    pub scheduler: Option<String>,
}

impl Settings {
    /// Reads the settings.
    pub fn load(dir: &DataDir) -> Result<Self> {
        let path = dir.settings();
        let text = fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {}: run `signer-cli init` first",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("{} is damaged", path.display()))
    }

    /// Writes the settings atomically.
    pub fn save(&self, dir: &DataDir) -> Result<()> {
        write_atomic(
            &dir.settings(),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}
