//! The node-state database as a node-host is handed it, by either launcher: its URL, read
//! afresh at each start, and the CA file the URL names (`sslrootcert`) copied into the node
//! directory, the URL pointed at the copy. A node-host reads nothing of the operator's
//! files: it is confined to its directory on this machine, and a Pod has only what its
//! Secret brings.

use std::path::Path;

use skylight_node_host::paths::NodeDir;

/// What a node-host is given.
pub struct NodeDatabase {
    /// The URL, for the node directory's `state-database-url` (secret).
    pub url: String,
    /// The CA certificates for its `state-database-ca.pem`, when the URL names a file.
    pub ca: Option<Vec<u8>>,
}

/// The database of `url_file` as the node-host of `dir` (as the node-host sees its
/// directory) is to be given it.
pub fn for_node(url_file: &Path, dir: &NodeDir) -> Result<NodeDatabase, String> {
    let url = std::fs::read_to_string(url_file)
        .map_err(|e| format!("cannot read {}: {e}", url_file.display()))?;
    let parsed =
        skylight_postgres::parse(&url).map_err(|e| format!("{}: {e}", url_file.display()))?;
    let Some(ca_file) = parsed.root_file() else {
        return Ok(NodeDatabase {
            url: url.trim().to_string(),
            ca: None,
        });
    };
    let ca = std::fs::read(ca_file)
        .map_err(|e| format!("cannot read {} (sslrootcert): {e}", ca_file.display()))?;
    Ok(NodeDatabase {
        url: parsed.with_root_file(&dir.state_database_ca()),
        ca: Some(ca),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_urls_ca_file_travels_with_it_and_the_url_points_at_the_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = tmp.path().join("ca.pem");
        std::fs::write(&ca, b"PEM").unwrap();
        let url_file = tmp.path().join("url");
        let dir = NodeDir::new("/var/lib/skylight/node");
        std::fs::write(
            &url_file,
            format!(
                "postgres://u:pw@db/sky?sslmode=verify-full&sslrootcert={}\n",
                ca.display()
            ),
        )
        .unwrap();
        let given = for_node(&url_file, &dir).unwrap();
        assert_eq!(given.ca.as_deref(), Some(&b"PEM"[..]));
        let parsed = skylight_postgres::parse(&given.url).unwrap();
        assert_eq!(parsed.root_file(), Some(dir.state_database_ca().as_path()));
        assert_eq!(parsed.pg.get_password(), Some(&b"pw"[..]));

        std::fs::write(&url_file, "postgres://u:pw@db/sky?sslmode=disable\n").unwrap();
        let given = for_node(&url_file, &dir).unwrap();
        assert_eq!(given.url, "postgres://u:pw@db/sky?sslmode=disable");
        assert!(given.ca.is_none());
    }
}
