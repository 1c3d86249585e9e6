use super::*;

const NODE: &str = "02058e8b6c2ad363ec59aa136429256d745164c2bdc87f98f0a68690ec2c5c9b0b";

fn csr_pem(cn: &str, key: &KeyPair) -> String {
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.serialize_request(key).unwrap().pem().unwrap()
}

#[test]
fn a_device_certificate_names_its_tenant_and_chains_to_the_tenant_ca() {
    let v = Validity::days(1);
    let root = Authority::new_root(v).unwrap();
    let users = root.new_child_ca(names::USERS_CA_CN, v).unwrap();
    let tenant = users.new_child_ca(&names::tenant_ca_cn(NODE), v).unwrap();
    // A CN of 76 characters: longer than RFC 5280's 64, as Greenlight's are.
    assert!(names::tenant_ca_cn(NODE).len() > 64);

    let key = KeyPair::generate().unwrap();
    let csr =
        DeviceCsr::from_pem(csr_pem(&names::device_cn(NODE, "default"), &key).as_bytes()).unwrap();
    assert_eq!(hex::encode(csr.named_node().unwrap()), NODE);
    let pem = tenant
        .sign_device(&csr, &names::device_cn(NODE, "default"), v)
        .unwrap();
    let id = PeerIdentity::from_der(&first_der(&pem).unwrap()).unwrap();
    assert_eq!(
        id,
        PeerIdentity::Device {
            node_id: parse_node_id(NODE).unwrap(),
            device: "default".into()
        }
    );
    // No SAN: a device certificate must never pass for a server.
    let der = first_der(&pem).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert!(cert.subject_alternative_name().unwrap().is_none());
    let expiry = not_after(&pem).unwrap();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    assert!(expiry > now && expiry <= now + 86_400 + 5);
}

#[test]
fn the_subject_is_rewritten_and_a_ca_request_is_ignored() {
    let v = Validity::days(1);
    let tenant = Authority::new_root(v)
        .unwrap()
        .new_child_ca(&names::tenant_ca_cn(NODE), v)
        .unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "/users/3030/evil");
    let csr = DeviceCsr::from_pem(
        params
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let pem = tenant
        .sign_device(&csr, &names::device_cn(NODE, "phone"), v)
        .unwrap();
    assert_eq!(subject_cn(&pem).unwrap(), names::device_cn(NODE, "phone"));
    let der = first_der(&pem).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert!(!cert.is_ca());
}

#[test]
fn csrs_that_prove_nothing_are_refused() {
    let key = KeyPair::generate().unwrap();
    let good = csr_pem("/users/x/default", &key);
    assert!(DeviceCsr::from_pem(good.as_bytes()).is_ok());

    assert!(matches!(
        DeviceCsr::from_pem(b""),
        Err(CertError::BadCsr(_))
    ));
    assert!(matches!(
        DeviceCsr::from_pem(b"garbage"),
        Err(CertError::BadCsr(_))
    ));

    // Flip a byte inside the signature: the CSR no longer proves possession of its key.
    use rustls_pki_types::pem::PemObject;
    let mut der = rustls_pki_types::CertificateSigningRequestDer::from_pem_slice(good.as_bytes())
        .unwrap()
        .as_ref()
        .to_vec();
    let n = der.len();
    der[n - 3] ^= 0x01;
    let tampered = pem_encode("CERTIFICATE REQUEST", &der);
    let err = DeviceCsr::from_pem(tampered.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains("signature") || err.contains("parse"), "{err}");

    // A P-384 key is not a device key.
    let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let err = DeviceCsr::from_pem(csr_pem("/users/x/default", &p384).as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains("P-256"), "{err}");
}

#[test]
fn a_ca_survives_a_round_trip_through_pem() {
    let v = Validity::days(1);
    let root = Authority::new_root(v).unwrap();
    let again = Authority::load(root.cert_pem(), root.key_pem()).unwrap();
    let leaf = again
        .issue_leaf(
            names::SCHEDULER_CN,
            &["localhost".into(), "127.0.0.1".into()],
            v,
        )
        .unwrap();
    assert_eq!(subject_cn(&leaf.cert_pem).unwrap(), names::SCHEDULER_CN);
    assert!(!format!("{leaf:?}").contains("PRIVATE KEY"));
    assert!(leaf.key_pem.contains("BEGIN PRIVATE KEY"));
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(label, der.to_vec()))
}

#[test]
fn a_node_server_certificate_names_localhost_under_the_tenant_ca() {
    let v = Validity::days(1);
    let tenant = Authority::new_root(v)
        .unwrap()
        .new_child_ca(&names::tenant_ca_cn(NODE), v)
        .unwrap();
    let issued = tenant.issue_node_server(NODE, v).unwrap();
    assert_eq!(
        subject_cn(&issued.cert_pem).unwrap(),
        names::node_server_cn(NODE)
    );
    let der = first_der(&issued.cert_pem).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        format!("{:?}", san.value.general_names),
        "[DNSName(\"localhost\")]"
    );
    assert_eq!(
        cert.issuer()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        names::tenant_ca_cn(NODE)
    );
}
