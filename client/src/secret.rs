//! The node secret: 32 bytes, from a BIP39 mnemonic as Greenlight's tools take it, or raw.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// The 32-byte secret every node key derives from (CLN's `hsm_secret`).
#[derive(Clone, PartialEq, Eq)]
pub struct HsmSecret([u8; 32]);

impl std::fmt::Debug for HsmSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HsmSecret(…)")
    }
}

impl HsmSecret {
    /// The bytes. Secret: never log them.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A raw secret.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        HsmSecret(bytes)
    }

    /// The secret of a BIP39 mnemonic as Greenlight's tools derive it: the first 32 bytes of
    /// the BIP39 seed with an empty passphrase. So the same words give the same node here
    /// and on Greenlight.
    pub fn from_mnemonic(words: &str) -> Result<Self> {
        let mnemonic = bip39::Mnemonic::parse_normalized(words.trim())
            .context("not a valid BIP39 mnemonic (check the words and their order)")?;
        let seed = mnemonic.to_seed_normalized("");
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&seed[..32]);
        Ok(HsmSecret(secret))
    }

    /// A new random mnemonic of 12 words and its secret.
    pub fn generate() -> Result<(String, Self)> {
        let mnemonic = bip39::Mnemonic::generate(12).context("cannot generate a mnemonic")?;
        let words = mnemonic.to_string();
        let secret = Self::from_mnemonic(&words)?;
        Ok((words, secret))
    }

    /// A raw secret written as 64 hex characters.
    pub fn from_hex(text: &str) -> Result<Self> {
        let bytes = hex::decode(text.trim()).context("the secret is not hex")?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            anyhow::anyhow!("the secret must be 32 bytes, got {}", b.len())
        })?;
        Ok(HsmSecret(bytes))
    }

    /// Reads a secret file (32 raw bytes).
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = fs::read(path).with_context(|| {
            format!(
                "cannot read {}: run `signer-cli init` first",
                path.display()
            )
        })?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            anyhow::anyhow!(
                "{} must hold 32 bytes, it holds {}",
                path.display(),
                b.len()
            )
        })?;
        Ok(HsmSecret(bytes))
    }

    /// Writes the secret file, 0600, refusing to replace an existing one: losing a secret
    /// loses the node's funds.
    pub fn save_new(&self, path: &Path) -> Result<()> {
        if path.exists() {
            bail!(
                "{} exists already; this device holds a secret. Move it away yourself if you really mean to replace it",
                path.display()
            );
        }
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        file.write_all(&self.0)?;
        file.sync_all()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mnemonic_gives_the_first_32_bytes_of_its_bip39_seed() {
        // BIP39's first English vector: "abandon ×11 about" with passphrase "" has seed
        // 5eb00bbddcf069084889a8ab9155568165f5c453ccb85e70811aaed6f6da5fc1...
        let s = HsmSecret::from_mnemonic(
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
        )
        .unwrap();
        assert_eq!(
            hex::encode(s.bytes()),
            "5eb00bbddcf069084889a8ab9155568165f5c453ccb85e70811aaed6f6da5fc1"
        );
        assert!(HsmSecret::from_mnemonic("abandon abandon").is_err());
    }

    #[test]
    fn the_secret_file_is_0600_and_never_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hsm_secret");
        let (_, s) = HsmSecret::generate().unwrap();
        s.save_new(&path).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(HsmSecret::load(&path).unwrap(), s);
        assert!(HsmSecret::from_bytes([1; 32]).save_new(&path).is_err());
        assert_eq!(format!("{s:?}"), "HsmSecret(…)");
    }
}
