//! The draft's endpoint paths (protocol-06 §5) under our versioned base, the directory and the
//! client API prefix: building them and recognising them (`NET-paths`).
//!
//! An identifier travels as one path segment: the whole identifier (for example
//! `mimi://a.example/r/clubhouse`) with every octet outside RFC 3986 `unreserved`
//! percent-encoded in upper case (`NET-paths-encoding`, the same rule as mimi-wire's
//! `WIRE-id-path`). Any valid percent-encoding is accepted on input; a raw `/` inside the
//! segment is refused. mimi-net does not parse the identifier itself: that is the
//! application's job (mimi-wire).

/// The versioned base of the provider endpoints.
pub const BASE: &str = "/v1";
/// The directory (protocol-06 §5.1), open to anyone.
pub const DIRECTORY_PATH: &str = "/.well-known/mimi-protocol-directory";
/// The provider-internal client API (DESIGN.md): server-authenticated TLS + bearer token.
pub const CLIENT_API_PREFIX: &str = "/client/v1/";

/// One of the draft's provider-to-provider endpoints (protocol-06 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `keyMaterial/{targetUser}`
    KeyMaterial,
    /// `update/{roomId}`
    Update,
    /// `notify/{roomId}`
    Notify,
    /// `submitMessage/{roomId}`
    SubmitMessage,
    /// `groupInfo/{roomId}`
    GroupInfo,
    /// `requestConsent/{targetUser}`
    RequestConsent,
    /// `updateConsent/{requesterUser}`
    UpdateConsent,
    /// `identifierQuery/{domain}`
    IdentifierQuery,
    /// `reportAbuse/{roomId}`
    ReportAbuse,
}

impl Endpoint {
    /// Every endpoint, in the directory's order.
    pub const ALL: [Endpoint; 9] = [
        Endpoint::KeyMaterial,
        Endpoint::Update,
        Endpoint::Notify,
        Endpoint::SubmitMessage,
        Endpoint::GroupInfo,
        Endpoint::RequestConsent,
        Endpoint::UpdateConsent,
        Endpoint::IdentifierQuery,
        Endpoint::ReportAbuse,
    ];

    /// The directory key, which is also the path segment.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::KeyMaterial => "keyMaterial",
            Endpoint::Update => "update",
            Endpoint::Notify => "notify",
            Endpoint::SubmitMessage => "submitMessage",
            Endpoint::GroupInfo => "groupInfo",
            Endpoint::RequestConsent => "requestConsent",
            Endpoint::UpdateConsent => "updateConsent",
            Endpoint::IdentifierQuery => "identifierQuery",
            Endpoint::ReportAbuse => "reportAbuse",
        }
    }

    /// The endpoint with this directory key (exact, case-sensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    /// The template variable (as in the draft's directory).
    pub fn variable(self) -> &'static str {
        match self {
            Endpoint::KeyMaterial | Endpoint::RequestConsent => "targetUser",
            Endpoint::UpdateConsent => "requesterUser",
            Endpoint::IdentifierQuery => "domain",
            _ => "roomId",
        }
    }

    /// The method the draft uses (every endpoint is a POST).
    pub fn method(self) -> http::Method {
        http::Method::POST
    }

    /// The URL template for the directory, e.g. `https://a.example/v1/notify/{roomId}`.
    pub fn template(self, origin: &str) -> String {
        format!(
            "{}{BASE}/{}/{{{}}}",
            origin.trim_end_matches('/'),
            self.name(),
            self.variable()
        )
    }
}

/// `/v1/<endpoint>/<percent-encoded identifier>`.
pub fn path(e: Endpoint, id: &str) -> String {
    format!("{BASE}/{}/{}", e.name(), percent_encode(id))
}

/// A path that names an endpoint but is not well formed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The identifier segment is missing.
    #[error("{endpoint} needs an identifier: {BASE}/{endpoint}/<percent-encoded identifier>")]
    MissingIdentifier {
        /// The endpoint's name.
        endpoint: &'static str,
    },
    /// The identifier segment is not valid percent-encoded UTF-8.
    #[error("the identifier segment {segment:?} is not valid: {problem}")]
    BadIdentifier {
        /// The segment as received.
        segment: String,
        /// What is wrong.
        problem: &'static str,
    },
}

/// What a request path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /.well-known/mimi-protocol-directory`.
    Directory,
    /// A provider endpoint and its identifier (decoded, not yet parsed).
    Endpoint(Endpoint, String),
    /// A provider endpoint with a malformed identifier.
    BadEndpoint(PathError),
    /// The client API; the rest of the path after [`CLIENT_API_PREFIX`] (query kept).
    ClientApi(String),
    /// Anything else.
    Unknown,
}

/// Which route a path (with or without a query) names.
pub fn route(path_and_query: &str) -> Route {
    let path = path_and_query.split('?').next().unwrap_or_default();
    if path == DIRECTORY_PATH {
        return Route::Directory;
    }
    if let Some(rest) = path_and_query.strip_prefix(CLIENT_API_PREFIX) {
        return Route::ClientApi(rest.to_owned());
    }
    let Some(rest) = path.strip_prefix(BASE).and_then(|r| r.strip_prefix('/')) else {
        return Route::Unknown;
    };
    let (name, id) = rest.split_once('/').unwrap_or((rest, ""));
    let Some(e) = Endpoint::from_name(name) else {
        return Route::Unknown;
    };
    if id.is_empty() {
        return Route::BadEndpoint(PathError::MissingIdentifier { endpoint: e.name() });
    }
    match percent_decode(id) {
        Ok(id) => Route::Endpoint(e, id),
        Err(err) => Route::BadEndpoint(err),
    }
}

/// Whether a path is provider-to-provider and so needs a client certificate and `From`
/// (`NET-mtls-required`). Only the directory and the client API are open to callers without
/// a provider identity; everything else, including unknown paths, is treated as a provider
/// path (refuse by default).
pub fn requires_provider(path_and_query: &str) -> bool {
    !matches!(
        route(path_and_query),
        Route::Directory | Route::ClientApi(_)
    )
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodes every octet outside RFC 3986 `unreserved`, upper-case hex
/// (`NET-paths-encoding`).
pub fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes one percent-encoded path segment (any case of hex accepted; a raw `/` refused).
pub fn percent_decode(segment: &str) -> Result<String, PathError> {
    let bad = |problem| PathError::BadIdentifier {
        segment: segment.chars().take(256).collect(),
        problem,
    };
    let b = segment.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'%' => {
                let (Some(h), Some(l)) = (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(bad("a '%' not followed by two hex digits"));
                };
                out.push(h << 4 | l);
                i += 3;
            }
            b'/' => return Err(bad("a raw '/' inside the segment (it must be %2F)")),
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad("not UTF-8 once decoded"))
}
