//! The archive inside an export: a tar file whose first entry is `manifest.json` (what the
//! node is, when it was exported, and every file with its size and SHA-256), followed by
//! the files under `node/`, named relative to the node directory.
//!
//! Unpacking checks everything before anything is placed: every name stays inside the
//! directory, every file is in the manifest with its size and digest, none is missing. It
//! writes into a fresh directory beside the target and renames it into place at the end,
//! so a failed unpack leaves nothing a node could start from.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ExportError;

/// The manifest's name in the archive.
pub const MANIFEST: &str = "manifest.json";
/// The prefix of the node's files in the archive.
pub const NODE_PREFIX: &str = "node/";
/// What [`Manifest::format`] says.
pub const FORMAT: &str = "skylight-node-export";
/// The manifest version this code writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

/// What an export holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// The node id, hex.
    pub node_id: String,
    /// The Bitcoin network the node runs on.
    pub network: String,
    /// When the export was packed, unix seconds.
    pub exported_at: u64,
    /// Who packed it (program and version).
    pub exported_by: String,
    /// Every file, by path relative to the node directory.
    pub files: BTreeMap<String, FileEntry>,
}

/// One file of the node directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the contents, hex.
    pub sha256: String,
}

/// What [`pack`] is told about the node besides its files.
pub struct NodeFacts {
    /// The node id, hex.
    pub node_id: String,
    /// Its network.
    pub network: String,
    /// Who packs it.
    pub exported_by: String,
    /// Unix seconds.
    pub exported_at: u64,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// Regular files under `dir`, relative paths sorted, except the top-level names in
/// `leave_out`; `extra` files (relative path → contents) are added as if they were there.
pub fn pack(
    dir: &Path,
    leave_out: &[&str],
    extra: &[(&str, Vec<u8>)],
    facts: NodeFacts,
) -> Result<(Vec<u8>, Manifest), ExportError> {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    collect(dir, dir, leave_out, &mut files)?;
    for (path, bytes) in extra {
        files.insert(path.to_string(), bytes.clone());
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        version: MANIFEST_VERSION,
        node_id: facts.node_id,
        network: facts.network,
        exported_at: facts.exported_at,
        exported_by: facts.exported_by,
        files: files
            .iter()
            .map(|(p, b)| {
                let entry = FileEntry {
                    size: b.len() as u64,
                    sha256: sha256_hex(b),
                };
                (p.clone(), entry)
            })
            .collect(),
    };
    let mut tar = tar::Builder::new(Vec::new());
    let json = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
    let mtime = manifest.exported_at;
    append(&mut tar, MANIFEST, &json, mtime)?;
    for (path, bytes) in &files {
        append(&mut tar, &format!("{NODE_PREFIX}{path}"), bytes, mtime)?;
    }
    Ok((tar.into_inner()?, manifest))
}

fn append(
    tar: &mut tar::Builder<Vec<u8>>,
    path: &str,
    bytes: &[u8],
    mtime: u64,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    // Everything in a node directory is the owner's only once unpacked.
    header.set_mode(0o600);
    header.set_mtime(mtime);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, path, bytes)
}

fn collect(
    root: &Path,
    dir: &Path,
    leave_out: &[&str],
    out: &mut BTreeMap<String, Vec<u8>>,
) -> Result<(), ExportError> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .map_err(|e| ExportError::Invalid(e.to_string()))?;
        let Some(rel_str) = rel.to_str() else {
            return Err(ExportError::Invalid(format!(
                "{}: a file name that is not UTF-8",
                path.display()
            )));
        };
        if dir == root && leave_out.contains(&rel_str) {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(root, &path, leave_out, out)?;
        } else if kind.is_file() {
            out.insert(rel_str.to_string(), std::fs::read(&path)?);
        }
        // Sockets and links are the running process's, not the node's state.
    }
    Ok(())
}

/// A path from the archive, if it stays inside the directory it is unpacked into.
fn safe_relative(name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Reads the manifest and the files of an archive, checking each against the manifest.
pub fn read(archive: &[u8]) -> Result<(Manifest, BTreeMap<PathBuf, Vec<u8>>), ExportError> {
    let bad = |m: String| ExportError::Invalid(m);
    let mut tar = tar::Archive::new(archive);
    let mut manifest: Option<Manifest> = None;
    let mut files = BTreeMap::new();
    for entry in tar.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        if manifest.is_none() {
            if name != MANIFEST {
                return Err(bad(format!(
                    "the archive starts with {name}, not {MANIFEST}"
                )));
            }
            let m: Manifest = serde_json::from_slice(&bytes)
                .map_err(|e| bad(format!("the manifest is damaged: {e}")))?;
            if m.format != FORMAT || m.version != MANIFEST_VERSION {
                return Err(bad(format!(
                    "the manifest says {} version {}; this version reads {FORMAT} version {MANIFEST_VERSION}",
                    m.format, m.version
                )));
            }
            manifest = Some(m);
            continue;
        }
        let m = manifest.as_ref().expect("read first");
        let rel = name
            .strip_prefix(NODE_PREFIX)
            .and_then(|r| safe_relative(r).map(|p| (r.to_string(), p)));
        let Some((key, rel)) = rel else {
            return Err(bad(format!("{name}: outside the node directory")));
        };
        let Some(expected) = m.files.get(&key) else {
            return Err(bad(format!("{name}: not in the manifest")));
        };
        if expected.size != bytes.len() as u64 || expected.sha256 != sha256_hex(&bytes) {
            return Err(bad(format!("{name}: does not match the manifest")));
        }
        if files.insert(rel, bytes).is_some() {
            return Err(bad(format!("{name}: twice in the archive")));
        }
    }
    let manifest = manifest.ok_or_else(|| bad("the archive is empty".into()))?;
    if files.len() != manifest.files.len() {
        let missing: Vec<&String> = manifest
            .files
            .keys()
            .filter(|k| !files.contains_key(Path::new(k.as_str())))
            .collect();
        return Err(bad(format!(
            "files in the manifest are missing: {missing:?}"
        )));
    }
    Ok((manifest, files))
}

/// Unpacks `archive` into `into`, which must not exist or be empty: a node directory is
/// never unpacked over another. Files are 0600, directories 0700; the manifest is written
/// beside them as [`MANIFEST`] (see [`verify`]).
pub fn unpack(archive: &[u8], into: &Path) -> Result<Manifest, ExportError> {
    if into.exists() && std::fs::read_dir(into)?.next().is_some() {
        return Err(ExportError::Invalid(format!(
            "{} is not empty: an export is never unpacked over another node; choose a new directory",
            into.display()
        )));
    }
    let (manifest, files) = read(archive)?;
    let name = into
        .file_name()
        .ok_or_else(|| ExportError::Invalid(format!("{}: not a directory name", into.display())))?;
    let partial = into.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)?;
    }
    crate::files::create_private_dir(&partial)?;
    for (rel, bytes) in &files {
        let path = partial.join(rel);
        if let Some(parent) = path.parent() {
            make_dirs(&partial, parent)?;
        }
        crate::files::create_private(&path, bytes)?;
    }
    // The manifest goes beside the files it lists: what a standalone import checks the
    // directory against (it must be as exported, never a copy that has run since).
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| ExportError::Invalid(format!("manifest: {e}")))?;
    crate::files::create_private(&partial.join(MANIFEST), &json)?;
    if into.exists() {
        std::fs::remove_dir(into)?;
    }
    std::fs::rename(&partial, into)?;
    crate::files::sync_dir_of(into)?;
    Ok(manifest)
}

/// Checks that the directory `dir`, unpacked by [`unpack`], still holds exactly what its
/// manifest lists: every file, each of the size and SHA-256 it was exported with, and no
/// other (a node that ran there would have changed or added some). Returns the manifest.
pub fn verify(dir: &Path) -> Result<Manifest, ExportError> {
    let bad = |m: String| ExportError::Invalid(m);
    let path = dir.join(MANIFEST);
    let bytes = std::fs::read(&path).map_err(|e| {
        bad(format!(
            "{}: {e}; not a directory `signer-cli export` unpacked",
            path.display()
        ))
    })?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("{}: damaged: {e}", path.display())))?;
    let mut files = BTreeMap::new();
    collect(dir, dir, &[MANIFEST], &mut files)?;
    let mut changed: Vec<&str> = Vec::new();
    for (name, entry) in &manifest.files {
        match files.get(name) {
            Some(b) if b.len() as u64 == entry.size && sha256_hex(b) == entry.sha256 => {}
            _ => changed.push(name),
        }
    }
    let added: Vec<&str> = files
        .keys()
        .filter(|k| !manifest.files.contains_key(*k))
        .map(String::as_str)
        .collect();
    if !changed.is_empty() || !added.is_empty() {
        return Err(bad(format!(
            "{} is no longer as exported (changed or missing: {changed:?}; added: {added:?})",
            dir.display()
        )));
    }
    Ok(manifest)
}

fn make_dirs(root: &Path, dir: &Path) -> std::io::Result<()> {
    if dir == root || dir.exists() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        make_dirs(root, parent)?;
    }
    crate::files::create_private_dir(dir)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn facts() -> NodeFacts {
        NodeFacts {
            node_id: "02ab".into(),
            network: "regtest".into(),
            exported_by: "test".into(),
            exported_at: 1,
        }
    }

    fn node_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("ldk/monitors")).unwrap();
        std::fs::write(dir.path().join("ldk/monitors/m1"), b"monitor").unwrap();
        std::fs::write(dir.path().join("signer_state.redb"), b"state").unwrap();
        std::fs::write(dir.path().join("node-host.pid"), b"123").unwrap();
        dir
    }

    #[test]
    fn a_packed_node_unpacks_to_the_same_files_for_the_owner_only() {
        let dir = node_dir();
        let (archive, manifest) = pack(
            dir.path(),
            &["node-host.pid"],
            &[("identity.json", b"{}".to_vec())],
            facts(),
        )
        .unwrap();
        let names: Vec<&str> = manifest.files.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["identity.json", "ldk/monitors/m1", "signer_state.redb"]
        );
        let out = tempfile::tempdir().unwrap();
        let into = out.path().join("node");
        assert_eq!(unpack(&archive, &into).unwrap(), manifest);
        assert_eq!(
            std::fs::read(into.join("ldk/monitors/m1")).unwrap(),
            b"monitor"
        );
        assert!(!into.join("node-host.pid").exists());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&into.join("signer_state.redb")), 0o600);
        assert_eq!(mode(&into.join("ldk")), 0o700);
    }

    #[test]
    fn an_unpacked_directory_verifies_until_a_file_changes_or_appears() {
        let dir = node_dir();
        let (archive, manifest) = pack(dir.path(), &["node-host.pid"], &[], facts()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let into = out.path().join("node");
        unpack(&archive, &into).unwrap();
        assert_eq!(verify(&into).unwrap(), manifest);
        std::fs::write(into.join("grpc-uri"), b"https://localhost:1").unwrap();
        let err = verify(&into).unwrap_err().to_string();
        assert!(err.contains("added: [\"grpc-uri\"]"), "{err}");
        std::fs::remove_file(into.join("grpc-uri")).unwrap();
        std::fs::write(into.join("ldk/monitors/m1"), b"monitor, later").unwrap();
        let err = verify(&into).unwrap_err().to_string();
        assert!(err.contains("ldk/monitors/m1"), "{err}");
    }

    #[test]
    fn an_export_is_never_unpacked_over_a_directory_with_files() {
        let dir = node_dir();
        let (archive, _) = pack(dir.path(), &[], &[], facts()).unwrap();
        let err = unpack(&archive, dir.path()).unwrap_err();
        assert!(err.to_string().contains("never unpacked over"), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join("node-host.pid")).unwrap(),
            b"123"
        );
    }

    #[test]
    fn a_file_that_does_not_match_the_manifest_is_refused() {
        let dir = node_dir();
        let (archive, _) = pack(dir.path(), &[], &[], facts()).unwrap();
        let at = archive
            .windows(8)
            .position(|w| w == b"monitor\0")
            .expect("stored as is, padded");
        let mut altered = archive.clone();
        altered[at] ^= 1;
        let out = tempfile::tempdir().unwrap();
        let err = unpack(&altered, &out.path().join("node")).unwrap_err();
        assert!(
            err.to_string().contains("does not match the manifest"),
            "{err}"
        );
        assert!(!out.path().join("node").exists());
    }

    #[test]
    fn names_leaving_the_node_directory_are_refused() {
        for bad in ["../x", "/etc/x", "a/../../x", ""] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
        assert_eq!(safe_relative("ldk/m"), Some(PathBuf::from("ldk/m")));
    }
}
