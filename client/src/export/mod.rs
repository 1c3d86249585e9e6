//! A node export: the node's directory packed as an archive with a manifest
//! ([`archive`]), sealed to the node key in Greenlight's backup format ([`seal`]), so that
//! only the seed's holder can open it, with Skylight's tools or Greenlight's client
//! (`backup_decrypt_with_seed`). Beside the node's files it carries the node's [`identity`].

pub mod archive;
pub mod identity;
pub mod seal;

/// Why an export could not be packed, sealed, opened or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading or writing files.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file is not an export this version reads, or it was altered.
    #[error("{0}")]
    Invalid(String),
    /// Opened with a seed that is not the node's.
    #[error(
        "the export does not open with this seed: it was made for another node, or the file is damaged"
    )]
    WrongKey,
}
