//! rustls configurations for QUIC (TLS 1.3, ALPN `h3`, ring passed explicitly;
//! `NET-ring-only`).

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::sync::Arc;

/// ALPN of HTTP/3.
pub const ALPN_H3: &[u8] = b"h3";

/// A TLS configuration error.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rustls refused the material.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    /// A trusted root is not a usable CA certificate.
    #[error("trusted root: {0}")]
    Root(String),
    /// The client verifier could not be built.
    #[error("client verifier: {0}")]
    Verifier(String),
}

/// The one crypto provider (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The node's identity and trust anchors.
#[derive(Clone)]
pub struct TlsMaterial {
    /// Its certificate chain.
    pub chain: Vec<CertificateDer<'static>>,
    /// Its key.
    pub key: Arc<PrivateKeyDer<'static>>,
    /// CAs peers must chain to.
    pub roots: Vec<CertificateDer<'static>>,
}

impl TlsMaterial {
    /// Reads a certificate chain, its key and the trusted roots from PEM files.
    pub fn load<P: AsRef<std::path::Path>>(
        cert: &std::path::Path,
        key: &std::path::Path,
        roots: &[P],
    ) -> Result<Self, crate::pki::PkiError> {
        Ok(Self {
            chain: crate::pki::load_certs(cert)?,
            key: Arc::new(crate::pki::load_key(key)?),
            roots: crate::pki::load_roots(roots)?,
        })
    }

    /// From PEM text (an issued certificate and the federation's CA certificates).
    pub fn from_pem(
        cert_pem: &str,
        key_pem: &str,
        roots_pem: &str,
    ) -> Result<Self, crate::pki::PkiError> {
        Ok(Self {
            chain: crate::pki::certs_from_pem(cert_pem, "certificate")?,
            key: Arc::new(crate::pki::key_from_pem(key_pem, "key")?),
            roots: crate::pki::certs_from_pem(roots_pem, "trusted roots")?,
        })
    }
}

fn root_store(roots: &[CertificateDer<'static>]) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for r in roots {
        store
            .add(r.clone())
            .map_err(|e| TlsError::Root(e.to_string()))?;
    }
    Ok(store)
}

/// Server: our certificate; a client certificate is verified against the roots when offered
/// but not required at the TLS level (clients of the client API have none; provider paths
/// require one, checked per request: `NET-mtls-required`).
pub fn server_config(m: &TlsMaterial) -> Result<rustls::ServerConfig, TlsError> {
    let p = provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(root_store(&m.roots)?), p.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(p)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(m.chain.clone(), m.key.clone_key())?;
    cfg.alpn_protocols = vec![ALPN_H3.to_vec()];
    cfg.max_early_data_size = 0;
    Ok(cfg)
}

/// Client: verifies the server against the roots, presents our certificate when `identity`
/// is given (provider to provider) and none otherwise (a device on the client API).
pub fn client_config(
    roots: &[CertificateDer<'static>],
    identity: Option<(&[CertificateDer<'static>], &PrivateKeyDer<'static>)>,
) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(root_store(roots)?);
    let mut cfg = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain.to_vec(), key.clone_key())?,
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![ALPN_H3.to_vec()];
    Ok(cfg)
}
