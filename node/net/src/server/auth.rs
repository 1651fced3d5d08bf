//! Who is calling: the checks every request passes before the application sees it
//! (`NET-authority`, `NET-mtls-required`, `NET-mtls-from`). Each refusal is a status and a
//! reason for people.

use crate::message::{Peer, Response};
use crate::paths::requires_provider;
use http::{HeaderMap, StatusCode};
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Mutex;

/// What TLS established about one connection, and the provider domain already verified
/// against its certificate (so that the name check runs once per connection, not per request).
pub(crate) struct ConnAuth {
    leaf: Option<CertificateDer<'static>>,
    verified: Mutex<Option<String>>,
}

impl ConnAuth {
    pub(crate) fn new(conn: &quinn::Connection) -> Self {
        let leaf = conn
            .peer_identity()
            .and_then(|id| id.downcast::<Vec<CertificateDer<'static>>>().ok())
            .and_then(|certs| certs.first().cloned());
        Self {
            leaf,
            verified: Mutex::new(None),
        }
    }

    /// Whether the connection's certificate is valid for `domain` (webpki's name check of
    /// the leaf, the same rules as for server certificates; RFC 6125 via protocol-06 §4.1).
    fn valid_for(&self, leaf: &CertificateDer<'static>, domain: &str) -> bool {
        if let Ok(v) = self.verified.lock()
            && v.as_deref() == Some(domain)
        {
            return true;
        }
        let Ok(name) = ServerName::try_from(domain.to_owned()) else {
            return false;
        };
        let ok = webpki::EndEntityCert::try_from(leaf)
            .is_ok_and(|c| c.verify_is_valid_for_subject_name(&name).is_ok());
        if ok && let Ok(mut v) = self.verified.lock() {
            *v = Some(domain.to_owned());
        }
        ok
    }
}

/// A refusal: answered as is, and logged.
pub(crate) type Refusal = Box<Response>;

fn refuse(status: StatusCode, reason: impl Into<String>) -> Refusal {
    Box::new(Response::error(status, reason))
}

/// Authenticates one request of a connection to provider `us`.
pub(crate) fn authenticate(
    us: &str,
    uri: &http::Uri,
    headers: &HeaderMap,
    conn: &ConnAuth,
) -> Result<Peer, Refusal> {
    // NET-authority: the request must name this provider. A single-certificate rustls server
    // ignores SNI and h3 does not check :authority (DESIGN.md). The port is ignored
    // (protocol-06 §4.1: "Host", port ignored if non-standard).
    let Some(host) = uri.host() else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "the request has no :authority; it must name the target provider (draft-ietf-mimi-protocol-06 §4.1)",
        ));
    };
    if !host.eq_ignore_ascii_case(us) {
        return Err(refuse(
            StatusCode::MISDIRECTED_REQUEST,
            format!("this is provider {us}, not {host}"),
        ));
    }
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    // NET-client-api: the directory and the client API are open at this layer; the
    // application checks the bearer token.
    if !requires_provider(path) {
        return Ok(Peer::Anonymous);
    }
    // NET-mtls-required: provider paths need a verified client certificate (rustls has
    // already checked that an offered certificate chains to a trusted root).
    let Some(leaf) = conn.leaf.as_ref() else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "a client certificate of the calling provider is required on provider paths (mutual TLS, draft-ietf-mimi-protocol-06 §4.1)",
        ));
    };
    // NET-mtls-from: `From: mimi@<domain>`, and the certificate must be valid for it.
    let domain = from_domain(headers)?;
    if !conn.valid_for(leaf, &domain) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!("the client certificate is not valid for {domain} named in From"),
        ));
    }
    Ok(Peer::Provider(domain))
}

/// `From: mimi@<domain>` (protocol-06 §4.1), the domain lower-cased.
fn from_domain(headers: &HeaderMap) -> Result<String, Refusal> {
    let mut all = headers.get_all(http::header::FROM).iter();
    let (Some(v), None) = (all.next(), all.next()) else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "exactly one From: mimi@<your domain> is required (draft-ietf-mimi-protocol-06 §4.1)",
        ));
    };
    let v = v
        .to_str()
        .map_err(|_| refuse(StatusCode::BAD_REQUEST, "From is not visible ASCII"))?;
    v.trim()
        .strip_prefix("mimi@")
        .filter(|d| {
            !d.is_empty()
                && d.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        })
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| {
            refuse(
                StatusCode::BAD_REQUEST,
                format!("From {v:?} is not mimi@<domain> (draft-ietf-mimi-protocol-06 §4.1)"),
            )
        })
}
