//! Requests and responses as the application sees them.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

/// Who is calling, as established by TLS (`NET-mtls-from`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Another provider: its certificate is valid for this domain, and its `From` names it.
    Provider(String),
    /// No provider identity (the client API, the directory): the application authenticates
    /// the caller itself (bearer token).
    Anonymous,
}

/// One request.
#[derive(Clone, Debug)]
pub struct Request {
    /// The caller.
    pub peer: Peer,
    /// Method.
    pub method: Method,
    /// Path (with query).
    pub path: String,
    /// Headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

/// One response.
#[derive(Clone, Debug)]
pub struct Response {
    /// Status.
    pub status: StatusCode,
    /// Headers.
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

    /// An error with a reason for people (text/plain), as every refusal is answered.
    pub fn error(status: StatusCode, reason: impl Into<String>) -> Self {
        let mut r = Self::new(status, format!("{}\n", reason.into()));
        r.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    }

    /// The body as text (for error reasons).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim_end().to_owned()
    }
}
