//! The device's own record of the signer state the node keeps: the highest version of each
//! entry it has seen (so the node cannot roll it back), and what it produced that the node
//! has not yet confirmed storing. The entries themselves are signed with the seed's state
//! key ([`crate::state_key`]), so the node cannot forge one.

use std::collections::BTreeMap;
use std::path::Path;

use crate::journal::Journal;

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
    /// Where the marks are saved: a journal, because they change on nearly every signing
    /// request and each change must be durable before the answer leaves.
    journal: Option<Journal>,
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
            journal: None,
            file: MarksFile::default(),
        }
    }

    /// Marks kept in `path` (JSON, with a journal of changes beside it: see
    /// [`crate::journal`]), read if it exists. A file from before unconfirmed entries were
    /// kept (a plain map of marks) is read as marks alone.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let damaged =
            |e: serde_json::Error| std::io::Error::other(format!("{}: {e}", path.display()));
        let (journal, state) = Journal::open(path)?;
        let file = match state {
            Some(bytes) => match serde_json::from_slice::<MarksFile>(&bytes) {
                Ok(f) => f,
                Err(_) => MarksFile {
                    marks: serde_json::from_slice(&bytes).map_err(damaged)?,
                    ..Default::default()
                },
            },
            None => MarksFile::default(),
        };
        Ok(Watermarks {
            journal: Some(journal),
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

    /// Saves the marks durably (nothing for marks kept in memory).
    fn save(&mut self) -> std::io::Result<()> {
        match &mut self.journal {
            // The unconfirmed entries are the signer's state: the device's only (0600).
            Some(journal) => {
                journal.save(&serde_json::to_vec(&self.file).map_err(std::io::Error::other)?)
            }
            None => Ok(()),
        }
    }

    /// Every mark: key and version.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.file.marks.iter().map(|(k, v)| (k.as_str(), *v))
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
            // A key first seen at version 0 is a mark too: its absence is what a node that
            // leaves the key out would count on.
            match self.file.marks.get_mut(&k) {
                Some(m) if v <= *m => {}
                Some(m) => {
                    *m = v;
                    changed = true;
                }
                None => {
                    self.file.marks.insert(k, v);
                    changed = true;
                }
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
