//! The integrity of the signer state the node keeps.
//!
//! The node stores the signer's state and ships it back; a node that altered it, or served
//! an old copy, could lead VLS to sign something that contradicts what it signed before.
//! So every entry the signer produces is signed with a key derived from the seed (the node
//! cannot forge one), and the device remembers, durably, the highest version of each key it
//! has seen (the node cannot roll it back). The signature follows Greenlight's scheme:
//! ECDSA over sha256("greenlight/state-signing/v1\0" ‖ u32be(len key) ‖ key ‖ u64be(version)
//! ‖ u32be(len value) ‖ value), with the key HKDF-SHA256(seed, "greenlight/state-signing/v1").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bitcoin::hashes::{Hash, HashEngine, sha256};
use bitcoin::secp256k1::{Message, PublicKey, Secp256k1, SecretKey, ecdsa::Signature};
use lightning_signer::util::crypto_utils::hkdf_sha256;
use skylight_proto::greenlight::SignerStateEntry;

const DOMAIN: &[u8] = b"greenlight/state-signing/v1";

/// Signs and checks state entries.
pub struct StateSigner {
    key: SecretKey,
    public: PublicKey,
}

impl StateSigner {
    /// The state key of `seed`.
    pub fn new(seed: &[u8; 32]) -> Self {
        let bytes = hkdf_sha256(seed, DOMAIN, &[]);
        let key = SecretKey::from_slice(&bytes).expect("an HKDF output is a valid key");
        StateSigner {
            public: key.public_key(&Secp256k1::signing_only()),
            key,
        }
    }

    fn digest(entry: &SignerStateEntry) -> Message {
        let mut e = sha256::Hash::engine();
        e.input(DOMAIN);
        e.input(&[0]);
        e.input(&(entry.key.len() as u32).to_be_bytes());
        e.input(entry.key.as_bytes());
        e.input(&entry.version.to_be_bytes());
        e.input(&(entry.value.len() as u32).to_be_bytes());
        e.input(&entry.value);
        Message::from_digest(sha256::Hash::from_engine(e).to_byte_array())
    }

    /// Signs `entry` in place.
    pub fn sign(&self, entry: &mut SignerStateEntry) {
        let sig = Secp256k1::signing_only().sign_ecdsa(&Self::digest(entry), &self.key);
        entry.signature = sig.serialize_compact().to_vec();
    }

    /// Whether `entry` carries this signer's valid signature.
    pub fn verify(&self, entry: &SignerStateEntry) -> bool {
        Signature::from_compact(&entry.signature).is_ok_and(|sig| {
            Secp256k1::verification_only()
                .verify_ecdsa(&Self::digest(entry), &sig, &self.public)
                .is_ok()
        })
    }
}

/// The highest version of each key this device has seen, kept in a file (or only in
/// memory, for a signer without a data directory), with the entries it produced that the
/// node has not yet confirmed storing.
///
/// Those entries matter when the device stops between raising a mark and the node storing
/// what it answered (killed mid-request, say): the node then offers an older version, and
/// the device must tell "the node missed my answer" (it re-sends its copy) from "the node
/// rolled me back" (it refuses). A device that kept only marks could not: its copy of the
/// state lived in memory.
pub struct Watermarks {
    path: Option<PathBuf>,
    file: MarksFile,
}

/// What the marks file holds.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct MarksFile {
    marks: BTreeMap<String, u64>,
    /// key → (version, value hex): produced here, not yet confirmed stored by the node.
    #[serde(default)]
    unconfirmed: BTreeMap<String, (u64, String)>,
    /// Device requests that approved a spend already (id hex → when signed, ms): each
    /// approves one. Kept while such a request could still be shipped (its window).
    #[serde(default)]
    spent: BTreeMap<String, u64>,
}

impl Watermarks {
    /// Marks kept in memory only.
    pub fn in_memory() -> Self {
        Watermarks {
            path: None,
            file: MarksFile::default(),
        }
    }

    /// Marks kept in `path` (JSON), read if it exists. A file from before unconfirmed
    /// entries were kept (a plain map of marks) is read as marks alone.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let damaged =
            |e: serde_json::Error| std::io::Error::other(format!("{}: {e}", path.display()));
        let file = match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<MarksFile>(&bytes) {
                Ok(f) => f,
                Err(_) => MarksFile {
                    marks: serde_json::from_slice(&bytes).map_err(damaged)?,
                    ..Default::default()
                },
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => MarksFile::default(),
            Err(e) => return Err(e),
        };
        Ok(Watermarks {
            path: Some(path.to_path_buf()),
            file,
        })
    }

    /// Whether the device request `id` approved a spend already.
    pub fn is_spent(&self, id: &[u8; 32]) -> bool {
        self.file.spent.contains_key(&hex::encode(id))
    }

    /// Records that the requests `ids` (signed at the times given, ms) approved a spend,
    /// durably before this returns; forgets those older than `horizon_ms`, which no
    /// signer would count any more.
    pub fn spend(&mut self, ids: &[([u8; 32], u64)], horizon_ms: u64) -> std::io::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.file.spent.retain(|_, ts| *ts >= horizon_ms);
        for (id, ts) in ids {
            self.file.spent.insert(hex::encode(id), *ts);
        }
        self.save()
    }

    /// Writes the marks file durably (nothing for marks kept in memory).
    fn save(&self) -> std::io::Result<()> {
        match &self.path {
            // The unconfirmed entries are the signer's state: the device's only.
            Some(path) => crate::files::replace_private(
                path,
                &serde_json::to_vec(&self.file).map_err(std::io::Error::other)?,
            ),
            None => Ok(()),
        }
    }

    /// The mark of `key`.
    pub fn get(&self, key: &str) -> Option<u64> {
        self.file.marks.get(key).copied()
    }

    /// The entries produced here that the node has not confirmed: key, version, value.
    pub fn unconfirmed(&self) -> Vec<(String, u64, Vec<u8>)> {
        self.file
            .unconfirmed
            .iter()
            .filter_map(|(k, (v, hex_value))| Some((k.clone(), *v, hex::decode(hex_value).ok()?)))
            .collect()
    }

    /// The node stored `key` at `version`: its copy no longer needs keeping here (written
    /// with the next change).
    pub fn confirmed(&mut self, key: &str, version: u64) {
        if self
            .file
            .unconfirmed
            .get(key)
            .is_some_and(|(v, _)| *v <= version)
        {
            self.file.unconfirmed.remove(key);
        }
    }

    /// Raises marks to these versions and keeps `news` (entries the node lacks) until it
    /// confirms them; written durably when anything changed.
    pub fn raise(
        &mut self,
        entries: impl IntoIterator<Item = (String, u64)>,
        news: &[(String, u64, Vec<u8>)],
    ) -> std::io::Result<()> {
        let mut changed = false;
        for (k, v) in entries {
            let m = self.file.marks.entry(k).or_default();
            if v > *m {
                *m = v;
                changed = true;
            }
        }
        for (k, v, value) in news {
            if self
                .file
                .unconfirmed
                .get(k)
                .is_none_or(|(have, _)| have < v)
            {
                self.file
                    .unconfirmed
                    .insert(k.clone(), (*v, hex::encode(value)));
                changed = true;
            }
        }
        if changed { self.save() } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> SignerStateEntry {
        SignerStateEntry {
            version: 4,
            key: "channels/x".into(),
            value: b"{}".to_vec(),
            signature: vec![],
        }
    }

    #[test]
    fn a_signed_entry_verifies_and_any_change_breaks_it() {
        let s = StateSigner::new(&[1; 32]);
        let mut e = entry();
        assert!(!s.verify(&e));
        s.sign(&mut e);
        assert!(s.verify(&e));
        let mut bumped = e.clone();
        bumped.version = 9;
        assert!(!s.verify(&bumped));
        let mut altered = e.clone();
        altered.value = b"{\"x\":1}".to_vec();
        assert!(!s.verify(&altered));
        assert!(!StateSigner::new(&[2; 32]).verify(&e), "another seed's key");
    }

    #[test]
    fn marks_survive_a_restart_and_never_go_down() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("marks.json");
        let mut m = Watermarks::open(&path).unwrap();
        m.raise([("a".to_string(), 5), ("b".to_string(), 2)], &[])
            .unwrap();
        m.raise([("a".to_string(), 3)], &[]).unwrap();
        let m = Watermarks::open(&path).unwrap();
        assert_eq!(m.get("a"), Some(5));
        assert_eq!(m.get("b"), Some(2));
    }
}
