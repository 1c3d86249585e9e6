//! Importing an export into the directory a standalone node runs from, once.
//!
//! Old Lightning state is toxic: a node rolled back to its export after it has run, or a
//! second copy of it, can broadcast a commitment it has revoked since and lose the channel.
//! So an import is recorded twice before a single file is copied: in this user's registry
//! of imports (one file per export, naming where it went), which refuses the same export
//! anywhere else, and then, once the copy is whole, in the node directory itself
//! (`imported.json`), which refuses importing over it. The export directory is checked
//! against its manifest first: one a node has run from is no longer an export.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use skylight_client::export::archive::{self, Manifest};
use skylight_client::files;

use crate::paths::NodeDir;

/// What an import records, in the registry and in the node directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRecord {
    /// The node id, hex.
    pub node_id: String,
    /// When the scheduler packed the export, unix seconds.
    pub exported_at: u64,
    /// Who packed it.
    pub exported_by: String,
    /// The directory imported from.
    pub from: PathBuf,
    /// The node directory imported into.
    pub into: PathBuf,
    /// When, unix seconds.
    pub imported_at: u64,
}

/// The registry's file for the export `manifest` describes.
fn registry_entry(registry: &Path, manifest: &Manifest) -> PathBuf {
    registry.join(format!(
        "{}-{}.json",
        manifest.node_id, manifest.exported_at
    ))
}

fn read_record(path: &Path) -> Result<Option<ImportRecord>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is damaged", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The record of the node in `dir`, which must be a standalone node's directory.
pub fn recorded(dir: &NodeDir) -> Result<ImportRecord> {
    read_record(&dir.imported())?.with_context(|| {
        format!(
            "{} holds no imported node: import one first with `node-host standalone --from-export DIR --data-dir {}`",
            dir.root().display(),
            dir.root().display()
        )
    })
}

/// Imports the export unpacked in `from` into the new node directory `into`, recording it
/// in `registry`; refuses an export imported before and a directory that holds files.
pub fn import(from: &Path, into: &Path, registry: &Path) -> Result<ImportRecord> {
    let from = std::path::absolute(from)?;
    let into = std::path::absolute(into)?;
    let manifest = archive::verify(&from).with_context(|| {
        format!(
            "{} cannot be imported: it must be exactly what `signer-cli export` unpacked",
            from.display()
        )
    })?;
    if !NodeDir::new(&from).identity().exists() {
        bail!(
            "{} holds no {}: not a Skylight export",
            from.display(),
            crate::paths::IDENTITY
        );
    }
    let entry = registry_entry(registry, &manifest);
    if let Some(before) = read_record(&entry)? {
        let finished = NodeDir::new(&before.into).imported().exists();
        if before.into != into {
            bail!(
                "node {}'s export was imported into {} already (unix {}): a second copy of one node can broadcast channel states it has revoked and lose every channel. Run that one (`node-host standalone --data-dir {}`); only if it never ran and is gone for good, remove {} to import again",
                manifest.node_id,
                before.into.display(),
                before.imported_at,
                before.into.display(),
                entry.display()
            );
        }
        if finished {
            bail!(
                "node {}'s export was imported into {} already (unix {}), and the node runs from there now: importing it again would roll it back to the channel states of the export, which it may have revoked since. Start it as it is: `node-host standalone --data-dir {}` (without --from-export)",
                manifest.node_id,
                into.display(),
                before.imported_at,
                into.display()
            );
        }
        // The same import, cut short before the node directory was in place: go on.
    }
    if into.exists() && std::fs::read_dir(&into)?.next().is_some() {
        bail!(
            "{} holds files already: a node is never imported over another; choose a new directory",
            into.display()
        );
    }
    let record = ImportRecord {
        node_id: manifest.node_id.clone(),
        exported_at: manifest.exported_at,
        exported_by: manifest.exported_by.clone(),
        from: from.clone(),
        into: into.clone(),
        imported_at: crate::now_secs(),
    };
    let json = serde_json::to_vec_pretty(&record)?;
    // Recorded before anything is copied: from here on, this export goes nowhere else.
    make_private_dirs(registry)?;
    files::replace_private(&entry, &json)
        .with_context(|| format!("cannot record the import in {}", entry.display()))?;

    let name = into
        .file_name()
        .with_context(|| format!("{}: not a directory name", into.display()))?;
    let partial = into.with_file_name(format!(".{}.importing", name.to_string_lossy()));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)?;
    }
    copy_tree(&from, &partial)?;
    files::replace_private(&NodeDir::new(&partial).imported(), &json)?;
    if into.exists() {
        std::fs::remove_dir(&into)?;
    }
    std::fs::rename(&partial, &into)
        .with_context(|| format!("cannot move the import into {}", into.display()))?;
    files::sync_dir_of(&into)?;
    Ok(record)
}

fn make_private_dirs(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

/// Copies the regular files under `from` into the new directory `to`: files 0600 and
/// synced, directories 0700.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    files::create_private_dir(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else if kind.is_file() {
            files::create_private(&dst, &std::fs::read(&src)?)?;
        }
    }
    std::fs::File::open(to)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An export unpacked into `<tmp>/export`, as `signer-cli export` leaves it.
    fn unpacked(tmp: &Path) -> PathBuf {
        let node = tmp.join("hosted");
        std::fs::create_dir_all(node.join("ldk")).unwrap();
        std::fs::write(node.join("ldk/manager"), b"manager").unwrap();
        std::fs::write(node.join("signer_state.redb"), b"state").unwrap();
        let (tar, _) = archive::pack(
            &node,
            &[],
            &[(crate::paths::IDENTITY, b"{}".to_vec())],
            archive::NodeFacts {
                node_id: "02ab".into(),
                network: "regtest".into(),
                exported_by: "test".into(),
                exported_at: 7,
            },
        )
        .unwrap();
        let export = tmp.join("export");
        archive::unpack(&tar, &export).unwrap();
        export
    }

    #[test]
    fn an_import_copies_the_export_and_records_it_in_both_places() {
        let tmp = tempfile::tempdir().unwrap();
        let (export, registry) = (unpacked(tmp.path()), tmp.path().join("registry"));
        let into = tmp.path().join("node");
        let record = import(&export, &into, &registry).unwrap();
        assert_eq!(record.node_id, "02ab");
        assert_eq!(std::fs::read(into.join("ldk/manager")).unwrap(), b"manager");
        assert_eq!(recorded(&NodeDir::new(&into)).unwrap(), record);
        assert!(registry.join("02ab-7.json").exists());
        let mode = std::fs::metadata(into.join("signer_state.redb"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn the_same_export_is_never_imported_twice_over_its_node_or_elsewhere() {
        let tmp = tempfile::tempdir().unwrap();
        let (export, registry) = (unpacked(tmp.path()), tmp.path().join("registry"));
        let into = tmp.path().join("node");
        import(&export, &into, &registry).unwrap();
        // The node runs: its state moves on.
        std::fs::write(into.join("ldk/manager"), b"manager, later").unwrap();
        let again = import(&export, &into, &registry).unwrap_err().to_string();
        assert!(again.contains("roll it back"), "{again}");
        assert_eq!(
            std::fs::read(into.join("ldk/manager")).unwrap(),
            b"manager, later",
            "the node that ran is untouched"
        );
        let elsewhere = import(&export, &tmp.path().join("other"), &registry)
            .unwrap_err()
            .to_string();
        assert!(elsewhere.contains("second copy"), "{elsewhere}");
        assert!(!tmp.path().join("other").exists());
    }

    #[test]
    fn an_import_cut_short_is_finished_by_the_same_import() {
        let tmp = tempfile::tempdir().unwrap();
        let (export, registry) = (unpacked(tmp.path()), tmp.path().join("registry"));
        let into = tmp.path().join("node");
        import(&export, &into, &registry).unwrap();
        // As if the process had died between the registry and the rename.
        std::fs::remove_dir_all(&into).unwrap();
        std::fs::create_dir(tmp.path().join(".node.importing")).unwrap();
        import(&export, &into, &registry).unwrap();
        assert!(into.join("imported.json").exists());
    }

    #[test]
    fn an_export_directory_a_node_has_run_from_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (export, registry) = (unpacked(tmp.path()), tmp.path().join("registry"));
        std::fs::write(export.join("signer_state.redb"), b"state, later").unwrap();
        let err = format!(
            "{:#}",
            import(&export, &tmp.path().join("node"), &registry).unwrap_err()
        );
        assert!(err.contains("no longer as exported"), "{err}");
        assert!(!registry.exists(), "nothing recorded for a refused import");
    }
}
