//! The devices this tenant revoked, as the signer knows them: by the public key their rune
//! is bound to. A request signed by such a key counts for nothing, whatever its rune says.
//!
//! Kept in a file of the device's data directory (`revoked-devices.json`: key hex → device
//! name), which `signer-cli revoke` and the running signer (from the scheduler's device
//! list) both add to, and never remove from: a revocation only ever narrows what the
//! signer approves, so it may come from anyone, the scheduler included. The running signer
//! reads the file again whenever it changes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

/// The revoked device keys.
pub struct RevokedKeys {
    path: Option<PathBuf>,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    seen: Option<(SystemTime, u64)>,
    keys: BTreeMap<String, String>,
}

impl RevokedKeys {
    /// Kept in memory only (a signer without a data directory).
    pub fn in_memory() -> Self {
        RevokedKeys {
            path: None,
            cache: Mutex::default(),
        }
    }

    /// Kept in `path`.
    pub fn at(path: PathBuf) -> Self {
        RevokedKeys {
            path: Some(path),
            cache: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(path) = &self.path {
            let now = std::fs::metadata(path)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            if now.is_some() && now != cache.seen {
                match std::fs::read(path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
                {
                    // What the file adds; nothing read before is forgotten.
                    Ok(keys) => {
                        let keys: BTreeMap<String, String> = keys;
                        cache.keys.extend(keys);
                        cache.seen = now;
                    }
                    Err(e) => tracing::error!(file = %path.display(), error = %e,
                        "cannot read the revoked devices; keeping those read before"),
                }
            }
        }
        cache
    }

    /// Whether `key` (a device's raw public key) is revoked.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.lock().keys.contains_key(&hex::encode(key))
    }

    /// Every revoked key (hex) with its device's name.
    pub fn all(&self) -> BTreeMap<String, String> {
        self.lock().keys.clone()
    }

    /// Adds these (key, device name) pairs, durably before returning; `true` if any was
    /// new.
    pub fn add(&self, revoked: &[(Vec<u8>, String)]) -> std::io::Result<bool> {
        let mut cache = self.lock();
        let mut changed = false;
        for (key, name) in revoked {
            if !key.is_empty() && !cache.keys.contains_key(&hex::encode(key)) {
                cache.keys.insert(hex::encode(key), name.clone());
                changed = true;
            }
        }
        if changed && let Some(path) = &self.path {
            let json = serde_json::to_vec_pretty(&cache.keys).map_err(std::io::Error::other)?;
            crate::files::replace_private(path, &json)?;
            cache.seen = std::fs::metadata(path)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_written_by_another_process_counts_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked-devices.json");
        let running = RevokedKeys::at(path.clone());
        assert!(!running.contains(&[4, 1]));
        // `signer-cli revoke`, another process.
        assert!(
            RevokedKeys::at(path.clone())
                .add(&[(vec![4, 1], "phone".into())])
                .unwrap()
        );
        assert!(running.contains(&[4, 1]), "the running signer reads it");
        assert!(
            !RevokedKeys::at(path.clone())
                .add(&[(vec![4, 1], "phone".into())])
                .unwrap()
        );
        let restarted = RevokedKeys::at(path);
        assert!(restarted.contains(&[4, 1]) && !restarted.contains(&[4, 2]));
    }
}
