//! The tenant's revoked devices, as the scheduler writes them into the node directory
//! (`revoked-devices`, a JSON list of device names). Their certificates still verify (TLS
//! cannot tell), so every call, and every signing request sent to an attached signer, is
//! checked against this list.
//!
//! The file is read again whenever it changes (its modification time and length), so a
//! revocation made while node-host runs counts from the next call, without a restart. A
//! file that cannot be read keeps the list last read, and says so in the log.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

/// The revoked devices, kept current with their file.
pub struct RevokedDevices {
    path: Option<PathBuf>,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    /// What the file was when last read: (modified, length); `None` for no file.
    seen: Option<(SystemTime, u64)>,
    names: HashSet<String>,
}

impl RevokedDevices {
    /// The list in `path` (none while the file does not exist).
    pub fn at(path: PathBuf) -> Self {
        RevokedDevices {
            path: Some(path),
            cache: Mutex::default(),
        }
    }

    /// No device is revoked (a node without a scheduler, in tests).
    pub fn none() -> Self {
        RevokedDevices {
            path: None,
            cache: Mutex::default(),
        }
    }

    /// Whether `device` is revoked now.
    pub fn contains(&self, device: &str) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::fs::metadata(path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        if now != cache.seen {
            match now {
                None => *cache = Cache::default(),
                Some(seen) => match std::fs::read(path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| serde_json::from_slice::<Vec<String>>(&b).map_err(|e| e.to_string()))
                {
                    Ok(names) => {
                        *cache = Cache {
                            seen: Some(seen),
                            names: names.into_iter().collect(),
                        }
                    }
                    Err(e) => {
                        tracing::error!(file = %path.display(), error = %e, "cannot read the revoked devices; keeping the list last read");
                    }
                },
            }
        }
        cache.names.contains(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_written_while_running_counts_from_the_next_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked-devices");
        let revoked = RevokedDevices::at(path.clone());
        assert!(!revoked.contains("phone"), "no file: nobody revoked");
        std::fs::write(&path, r#"["phone"]"#).unwrap();
        assert!(revoked.contains("phone"));
        assert!(!revoked.contains("laptop"));
        std::fs::write(&path, r#"["phone","laptop"]"#).unwrap();
        assert!(revoked.contains("laptop"));
        // A damaged file keeps what was read.
        std::fs::write(&path, "not json at all").unwrap();
        assert!(revoked.contains("phone") && revoked.contains("laptop"));
    }
}
