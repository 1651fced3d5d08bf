//! The federation's certificates (`NET-pki`): a CA for a local federation and a certificate per
//! provider whose DNS name is the provider's domain. ECDSA P-256 by default, so that peers in
//! other languages can load the keys (DESIGN.md: rcgen's Ed25519 PKCS#8 v2 keys are not
//! readable by OpenSSL 3.0).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;

/// A PKI failure.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file has no usable PEM content.
    #[error("{path}: {problem}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

/// A certificate authority: its certificate and key, PEM.
pub struct Ca {
    /// The CA certificate (PEM).
    pub cert_pem: String,
    /// The CA key (PEM, PKCS#8).
    pub key_pem: String,
}

/// A provider's certificate and key, PEM.
pub struct Issued {
    /// The certificate chain (leaf, PEM).
    pub cert_pem: String,
    /// The key (PEM, PKCS#8).
    pub key_pem: String,
}

impl Issued {
    /// Writes the certificate and key (the key readable by the owner only).
    pub fn write(&self, cert: &Path, key: &Path) -> Result<(), PkiError> {
        write_pem(cert, &self.cert_pem, false)?;
        write_pem(key, &self.key_pem, true)
    }
}

impl Ca {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> Result<Self, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let key_pem = key.serialize_pem();
        let issuer = CertifiedIssuer::self_signed(params, key)?;
        Ok(Self {
            cert_pem: issuer.pem(),
            key_pem,
        })
    }

    /// Issues a certificate for a provider domain (DNS SAN = domain), usable as TLS server and
    /// client certificate.
    pub fn issue(&self, domain: &str) -> Result<Issued, PkiError> {
        let ca_key = KeyPair::from_pem(&self.key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, ca_key)?;
        let mut params = CertificateParams::new(vec![domain.to_owned()])?;
        params.distinguished_name.push(DnType::CommonName, domain);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Writes the CA's certificate and key (the key readable by the owner only).
    pub fn write(&self, cert: &Path, key: &Path) -> Result<(), PkiError> {
        write_pem(cert, &self.cert_pem, false)?;
        write_pem(key, &self.key_pem, true)
    }

    /// Reads a CA from its two PEM files.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, PkiError> {
        Ok(Self {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
        })
    }
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Writes a PEM file (private keys readable by the owner only).
pub fn write_pem(path: &Path, pem: &str, private: bool) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::write(path, pem).map_err(io)?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    #[cfg(not(unix))]
    let _ = private;
    Ok(())
}

/// Certificates from PEM text.
pub fn certs_from_pem(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    let certs = certs.map_err(|e| PkiError::Pem {
        path: what.to_owned(),
        problem: format!("not PEM certificates: {e:?}"),
    })?;
    if certs.is_empty() {
        return Err(PkiError::Pem {
            path: what.to_owned(),
            problem: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// A private key from PEM text.
pub fn key_from_pem(pem: &str, what: &str) -> Result<PrivateKeyDer<'static>, PkiError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| PkiError::Pem {
        path: what.to_owned(),
        problem: format!("no usable private key: {e:?}"),
    })
}

/// Certificates from a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    certs_from_pem(&read(path)?, &path.display().to_string())
}

/// A private key from a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, PkiError> {
    key_from_pem(&read(path)?, &path.display().to_string())
}

/// The trusted roots of a federation: every certificate of every file (a list of CA files, or
/// one file with several CAs). At least one is required.
pub fn load_roots<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let mut roots = Vec::new();
    for p in paths {
        roots.extend(load_certs(p.as_ref())?);
    }
    if roots.is_empty() {
        return Err(PkiError::Pem {
            path: "trusted roots".into(),
            problem: "no trusted root is configured".into(),
        });
    }
    Ok(roots)
}
