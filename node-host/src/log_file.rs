//! node-host's log file, kept to a size: past its limit (after a whole write, so lines are
//! never cut) `node-host.log` becomes `node-host.log.1`, `.1` becomes `.2`, and the old
//! `.2` is gone. A node-host that runs for months keeps at most three files' worth.
//!
//! Written here rather than taken from a crate: the rotating-file crates we looked at
//! assert on the state of the filesystem (a file an operator moved or deleted panics the
//! writer), and a log writer must never take the node down. Every failure here is
//! swallowed into "the line is lost": the node goes on.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// How many rotated files are kept beside the live one.
const KEPT: u32 = 2;

/// An append-only log file that rotates itself by size.
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: usize,
    file: Option<File>,
    written: usize,
}

impl RotatingFile {
    /// Appends to `path` (created 0600 if missing), rotating past `max_bytes`.
    pub fn new(path: PathBuf, max_bytes: usize) -> Self {
        let mut f = RotatingFile {
            path,
            max_bytes,
            file: None,
            written: 0,
        };
        f.open();
        f
    }

    fn open(&mut self) {
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .ok();
        self.written = self
            .file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len() as usize);
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        name.into()
    }

    fn rotate(&mut self) {
        self.file = None;
        // Oldest first, so nothing is overwritten before it has moved; a file missing at
        // any step (the operator moved it) is simply skipped.
        for n in (1..KEPT).rev() {
            let _ = std::fs::rename(self.rotated(n), self.rotated(n + 1));
        }
        let _ = std::fs::rename(&self.path, self.rotated(1));
        self.open();
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.is_none() {
            self.open();
        }
        if let Some(f) = self.file.as_mut() {
            // A line that cannot be written is lost, not an error the node sees.
            if f.write_all(buf).is_ok() {
                self.written += buf.len();
            }
        }
        if self.written > self.max_bytes {
            self.rotate();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(f) = self.file.as_mut() {
            let _ = f.flush();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_file_is_rotated_past_its_size_and_only_two_old_ones_are_kept() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mut w = RotatingFile::new(dir.path().join("node-host.log"), 1_000);
        let line = format!("{}\n", "x".repeat(99));
        for _ in 0..100 {
            w.write_all(line.as_bytes()).unwrap();
        }
        w.flush().unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["node-host.log", "node-host.log.1", "node-host.log.2"]
        );
        let total: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(total <= 3 * 1_100, "10,000 bytes written, {total} kept");
        // Whole lines only: a rotated file ends where a line does.
        let old = std::fs::read_to_string(dir.path().join("node-host.log.1")).unwrap();
        assert!(
            old.ends_with('\n') && old.len().is_multiple_of(100),
            "{}",
            old.len()
        );
    }

    #[test]
    fn a_log_file_deleted_under_the_writer_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node-host.log");
        let mut w = RotatingFile::new(path.clone(), 1_000);
        w.write_all(b"one\n").unwrap();
        std::fs::remove_file(&path).unwrap();
        // The open file is gone from the directory; rotation brings a new one.
        for _ in 0..300 {
            w.write_all(b"line\n").unwrap();
        }
        assert!(path.exists());
    }
}
