//! Requests and responses as the application sees them.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

/// Who is calling, as established by TLS and `From` (`NET-mtls-from`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Another provider: its certificate is valid for this domain (lower case), and its
    /// `From: mimi@<domain>` names it.
    Provider(String),
    /// No provider identity (the client API, the directory): the application authenticates
    /// the caller itself (bearer token).
    Anonymous,
}

impl Peer {
    /// The calling provider's domain, if the caller is a provider.
    pub fn provider(&self) -> Option<&str> {
        match self {
            Peer::Provider(d) => Some(d),
            Peer::Anonymous => None,
        }
    }

    /// Whether the caller is the provider `domain` (ASCII case-insensitive). The application
    /// uses this for every user or provider a body claims to act for (`NET-mtls-body`: the
    /// transport cannot see bodies).
    pub fn is_provider(&self, domain: &str) -> bool {
        self.provider()
            .is_some_and(|d| d.eq_ignore_ascii_case(domain))
    }
}

/// One authenticated request.
#[derive(Clone, Debug)]
pub struct Request {
    /// The caller.
    pub peer: Peer,
    /// Method.
    pub method: Method,
    /// Path with query, as received (percent-encoding kept; see [`crate::paths::route`]).
    pub path: String,
    /// Headers.
    pub headers: HeaderMap,
    /// The whole body (at most `max_body` bytes, as many as `content-length` said).
    pub body: Bytes,
}

impl Request {
    /// The token of `Authorization: Bearer <token>` (the client API's authentication).
    pub fn bearer_token(&self) -> Option<&str> {
        let v = self
            .headers
            .get(http::header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        let (scheme, token) = v.trim().split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }
}

/// One response.
#[derive(Clone, Debug)]
pub struct Response {
    /// Status.
    pub status: StatusCode,
    /// Headers (`content-length` is set by the transport).
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Response {
    /// A response with a body.
    pub fn new(status: StatusCode, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: body.into(),
        }
    }

    /// An error with a reason for people (`text/plain`), as every refusal is answered.
    pub fn error(status: StatusCode, reason: impl Into<String>) -> Self {
        let mut r = Self::new(status, format!("{}\n", reason.into()));
        r.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    }

    /// Adds `Retry-After: <seconds>`.
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.headers
            .insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
        self
    }

    /// The body as text (for error reasons).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim_end().to_owned()
    }
}
