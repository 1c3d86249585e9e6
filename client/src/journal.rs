//! A small piece of state saved durably on every change, cheaply: each save appends the
//! whole state as one checksummed record to a log and syncs the data (one `fdatasync`),
//! where replacing a file costs two syncs and a rename. A snapshot file beside the log holds
//! the state as of the last compaction; the log is folded into it once it grows past
//! [`COMPACT_AT`].
//!
//! The state is the last whole record in the log, or the snapshot when the log holds none.
//! A record torn by a crash was never acknowledged (its save had not returned), so it is
//! dropped and the one before it stands. Compaction writes the snapshot with exactly the
//! state of the log's last record before emptying the log, so a crash between the two
//! leaves a log whose last record equals the snapshot: either way reads the same.
//!
//! Record: payload length (u32, little-endian) ‖ the first 8 bytes of SHA-256(payload) ‖
//! payload.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The log's size past which it is folded into the snapshot.
pub const COMPACT_AT: u64 = 256 * 1024;

const HEADER: usize = 4 + 8;

/// The snapshot and log of one piece of state; both files are 0600.
pub struct Journal {
    snapshot: PathBuf,
    log: File,
    log_len: u64,
}

impl Journal {
    /// Opens the journal whose snapshot is `snapshot` (the log is beside it, `.log`),
    /// creating the log if needed, and returns the current state, if any was ever saved.
    /// A torn record at the log's end is cut off.
    pub fn open(snapshot: &Path) -> std::io::Result<(Self, Option<Vec<u8>>)> {
        let log_path = snapshot.with_extension("log");
        let created = !log_path.exists();
        let mut log = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&log_path)?;
        if created {
            // The new file's directory entry must be durable before a save counts on it.
            crate::files::sync_dir_of(&log_path)?;
        }
        let mut bytes = Vec::new();
        log.read_to_end(&mut bytes)?;
        let (last, valid_len) = last_record(&bytes);
        if valid_len < bytes.len() as u64 {
            log.set_len(valid_len)?;
            log.sync_data()?;
        }
        log.seek(SeekFrom::End(0))?;
        let state = match last {
            Some(state) => Some(state),
            None => match std::fs::read(snapshot) {
                Ok(b) => Some(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            },
        };
        let journal = Journal {
            snapshot: snapshot.to_path_buf(),
            log,
            log_len: valid_len,
        };
        Ok((journal, state))
    }

    /// Saves `state` durably before returning: one appended record, or, once the log is
    /// long, a new snapshot and an empty log.
    pub fn save(&mut self, state: &[u8]) -> std::io::Result<()> {
        let len = u32::try_from(state.len()).map_err(std::io::Error::other)?;
        let mut record = Vec::with_capacity(HEADER + state.len());
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&checksum(state));
        record.extend_from_slice(state);
        self.log.write_all(&record)?;
        self.log.sync_data()?;
        self.log_len += record.len() as u64;
        if self.log_len > COMPACT_AT {
            self.compact(state)?;
        }
        Ok(())
    }

    /// Folds the log into the snapshot: `state` must be the log's last record.
    fn compact(&mut self, state: &[u8]) -> std::io::Result<()> {
        crate::files::replace_private(&self.snapshot, state)?;
        self.log.set_len(0)?;
        self.log.sync_data()?;
        self.log_len = 0;
        Ok(())
    }
}

fn checksum(payload: &[u8]) -> [u8; 8] {
    let digest = ring::digest::digest(&ring::digest::SHA256, payload);
    let mut out = [0; 8];
    out.copy_from_slice(&digest.as_ref()[..8]);
    out
}

/// The last whole record of `log` and the length of its whole records.
fn last_record(log: &[u8]) -> (Option<Vec<u8>>, u64) {
    let mut at = 0usize;
    let mut last = None;
    while log.len() - at >= HEADER {
        let len = u32::from_le_bytes(log[at..at + 4].try_into().unwrap()) as usize;
        let Some(end) = (at + HEADER).checked_add(len).filter(|e| *e <= log.len()) else {
            break;
        };
        let payload = &log[at + HEADER..end];
        if checksum(payload) != log[at + 4..at + HEADER] {
            break;
        }
        last = Some(payload.to_vec());
        at = end;
    }
    (last, at as u64)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn open(path: &Path) -> (Journal, Option<Vec<u8>>) {
        Journal::open(path).unwrap()
    }

    #[test]
    fn the_last_save_is_read_back_and_both_files_are_the_owners_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        assert_eq!(open(&path).1, None);
        let (mut j, _) = open(&path);
        j.save(b"one").unwrap();
        j.save(b"two").unwrap();
        drop(j);
        assert_eq!(open(&path).1.as_deref(), Some(&b"two"[..]));
        let mode = std::fs::metadata(path.with_extension("log"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_snapshot_from_before_the_log_existed_is_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        std::fs::write(&path, b"old").unwrap();
        let (mut j, state) = open(&path);
        assert_eq!(state.as_deref(), Some(&b"old"[..]));
        j.save(b"new").unwrap();
        drop(j);
        assert_eq!(open(&path).1.as_deref(), Some(&b"new"[..]));
    }

    #[test]
    fn a_torn_last_record_is_dropped_and_the_one_before_stands() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let (mut j, _) = open(&path);
        j.save(b"kept").unwrap();
        j.save(b"torn by a crash").unwrap();
        drop(j);
        let log = path.with_extension("log");
        let whole = std::fs::read(&log).unwrap();
        // Every cut through the second record, and a flipped byte in it, leaves the first.
        let first_len = (HEADER + 4) as u64;
        for cut in first_len..whole.len() as u64 {
            std::fs::write(&log, &whole[..cut as usize]).unwrap();
            let (_, state) = open(&path);
            assert_eq!(state.as_deref(), Some(&b"kept"[..]), "cut at {cut}");
            assert_eq!(std::fs::metadata(&log).unwrap().len(), first_len);
        }
        let mut flipped = whole.clone();
        *flipped.last_mut().unwrap() ^= 1;
        std::fs::write(&log, &flipped).unwrap();
        let (mut j, state) = open(&path);
        assert_eq!(state.as_deref(), Some(&b"kept"[..]));
        // Saves after a cut land after the last whole record.
        j.save(b"after").unwrap();
        drop(j);
        assert_eq!(open(&path).1.as_deref(), Some(&b"after"[..]));
    }

    #[test]
    fn a_long_log_is_folded_into_the_snapshot_and_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let (mut j, _) = open(&path);
        let big = vec![b'x'; 10_000];
        let mut last = Vec::new();
        for i in 0..40u8 {
            last = [&big[..], &[i]].concat();
            j.save(&last).unwrap();
        }
        drop(j);
        let log_len = std::fs::metadata(path.with_extension("log")).unwrap().len();
        assert!(log_len <= COMPACT_AT, "log not folded: {log_len} bytes");
        assert!(path.exists(), "no snapshot written");
        assert_eq!(open(&path).1, Some(last.clone()));
        // A crash after the snapshot but before the log was emptied reads the same.
        let (mut j, _) = open(&path);
        j.save(b"y").unwrap();
        drop(j);
        crate::files::replace_private(&path, b"y").unwrap();
        assert_eq!(open(&path).1.as_deref(), Some(&b"y"[..]));
    }
}
