//! The federation's certificates.

use mimi_net::pki::{Ca, certs_from_pem, key_from_pem, load_roots};
use mimi_net::tls::TlsMaterial;

#[test]
fn net_pki_files_round_trip_keys_private_and_bad_pem_refused() {
    let ca = Ca::new("t").unwrap();
    let other = Ca::new("u").unwrap();
    let dir = std::env::temp_dir().join(format!("mimi-net-pki-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    ca.write(&dir.join("ca.crt"), &dir.join("ca.key")).unwrap();
    other
        .write(&dir.join("other.crt"), &dir.join("other.key"))
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("ca.key"), 0o600);
    }
    let again = Ca::load(&dir.join("ca.crt"), &dir.join("ca.key")).unwrap();
    let issued = again.issue("b.example").unwrap();
    issued
        .write(&dir.join("b.crt"), &dir.join("b.key"))
        .unwrap();
    // A list of trusted roots.
    let roots = load_roots(&[dir.join("ca.crt"), dir.join("other.crt")]).unwrap();
    assert_eq!(roots.len(), 2);
    let m = TlsMaterial::load(
        &dir.join("b.crt"),
        &dir.join("b.key"),
        &[dir.join("ca.crt")],
    )
    .unwrap();
    assert_eq!(m.chain.len(), 1);
    assert!(mimi_net::tls::server_config(&m).is_ok());
    // NET-pki: ECDSA P-256 keys (readable by OpenSSL and other stacks, DESIGN.md), PKCS#8.
    assert!(issued.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    for key in [&issued.key_pem, &ca.key_pem] {
        let k = rcgen::KeyPair::from_pem(key).unwrap();
        assert!(k.is_compatible(&rcgen::PKCS_ECDSA_P256_SHA256));
    }
    // NET-pki: the DNS name is the provider's domain and nothing else.
    let leaf = webpki::EndEntityCert::try_from(&m.chain[0]).unwrap();
    let name = |d: &str| rustls::pki_types::ServerName::try_from(d.to_owned()).unwrap();
    assert!(
        leaf.verify_is_valid_for_subject_name(&name("b.example"))
            .is_ok()
    );
    assert!(
        leaf.verify_is_valid_for_subject_name(&name("c.example"))
            .is_err()
    );
    assert!(load_roots::<std::path::PathBuf>(&[]).is_err());
    assert!(load_roots(&[dir.join("missing.crt")]).is_err());
    assert!(certs_from_pem("garbage", "x").is_err());
    assert!(key_from_pem(&ca.cert_pem, "x").is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
