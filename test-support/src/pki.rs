//! A certificate hierarchy as the scheduler builds it (root, users CA, one CA per tenant),
//! made in memory for tests that serve a node without a scheduler.

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use skylight_certs::{Authority, DeviceCsr, Validity, names};

/// The root, the users CA, and one CA per tenant.
pub struct Pki {
    /// The root CA: clients trust it.
    pub root: Authority,
    /// The users CA, under the root.
    pub users: Authority,
    /// The tenants' CAs, in the order of the node ids given to [`Pki::new`].
    pub tenants: Vec<Authority>,
}

impl Pki {
    /// A hierarchy with a CA for each of `node_ids`, valid for a day.
    pub fn new(node_ids: &[[u8; 33]]) -> Self {
        let v = Validity::days(1);
        let root = Authority::new_root(v).unwrap();
        let users = root.new_child_ca(names::USERS_CA_CN, v).unwrap();
        let tenants = node_ids
            .iter()
            .map(|n| {
                users
                    .new_child_ca(&names::tenant_ca_cn(&hex::encode(n)), v)
                    .unwrap()
            })
            .collect();
        Pki {
            root,
            users,
            tenants,
        }
    }

    /// A device of tenant `i` (whose node id is `node`): its chain and key, PEM, as the
    /// scheduler would issue them.
    pub fn device(&self, i: usize, node: &[u8; 33]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, "device");
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        let csr = DeviceCsr::from_pem(csr.as_bytes()).unwrap();
        let tenant = &self.tenants[i];
        let leaf = tenant
            .sign_device(
                &csr,
                &names::device_cn(&hex::encode(node), "default"),
                Validity::days(1),
            )
            .unwrap();
        let chain = format!(
            "{leaf}{}{}{}",
            tenant.cert_pem(),
            self.users.cert_pem(),
            self.root.cert_pem()
        );
        (chain, key.serialize_pem())
    }
}
