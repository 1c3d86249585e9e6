//! Certificate subject names, as Greenlight names them.
//!
//! The identity path (`/users/<node_id_hex>/<device>`) is what clients parse out of their own
//! device certificate to learn their node id, and what the scheduler parses out of a peer
//! certificate to learn the tenant; Greenlight prefixes CA names with `GL `.

/// The root CA.
pub const ROOT_CN: &str = "GL /";
/// The CA under which every tenant CA and the nobody identity sit.
pub const USERS_CA_CN: &str = "GL /users";
/// The CA for services (the scheduler's and node-hosts' server certificates).
pub const SERVICES_CA_CN: &str = "GL /services";
/// The anonymous identity used before a tenant has a device certificate.
pub const NOBODY_CN: &str = "GL /users/nobody";
/// The scheduler's server certificate.
pub const SCHEDULER_CN: &str = "GL /services/scheduler";

/// The device name of the certificate issued on register.
pub const REGISTER_DEVICE: &str = "default";

/// The CN of a tenant's own CA.
pub fn tenant_ca_cn(node_id_hex: &str) -> String {
    format!("GL /users/{node_id_hex}")
}

/// The CN of a tenant device certificate.
pub fn device_cn(node_id_hex: &str, device: &str) -> String {
    format!("/users/{node_id_hex}/{device}")
}

/// The CN of a tenant's node server certificate.
pub fn node_server_cn(node_id_hex: &str) -> String {
    format!("GL /users/{node_id_hex}/node")
}

/// The device name of a certificate issued on recover: Greenlight's clients put the first
/// 8 challenge bytes in it.
pub fn recovered_device(challenge: &[u8]) -> String {
    let n = challenge.len().min(8);
    format!("recovered-{}", hex::encode(&challenge[..n]))
}

/// Splits an identity path (with or without the `GL ` prefix) into its `/`-separated parts:
/// `GL /users/ab/default` gives `["users", "ab", "default"]`.
pub fn path_parts(cn: &str) -> Option<Vec<&str>> {
    let path = cn.strip_prefix("GL ").unwrap_or(cn);
    let rest = path.strip_prefix('/')?;
    if rest.is_empty() {
        return Some(vec![]);
    }
    Some(rest.split('/').collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_with_and_without_prefix() {
        assert_eq!(path_parts("GL /"), Some(vec![]));
        assert_eq!(path_parts("GL /users"), Some(vec!["users"]));
        assert_eq!(
            path_parts("/users/02ab/default"),
            Some(vec!["users", "02ab", "default"])
        );
        assert_eq!(path_parts("users/02ab"), None);
    }

    #[test]
    fn recovered_device_uses_eight_challenge_bytes() {
        assert_eq!(recovered_device(&[0xab; 32]), "recovered-abababababababab");
    }
}
