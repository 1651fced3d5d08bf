//! A device's client of its home node's client API (`/client/v1/...`, DESIGN.md):
//! server-authenticated TLS, no client certificate, `Authorization: Bearer <token>`
//! (`NET-client-api`).

use super::{CallError, Connector};
use crate::limits::NetLimits;
use crate::message::Response;
use crate::paths::CLIENT_API_PREFIX;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use rustls::pki_types::CertificateDer;
use std::collections::HashMap;
use std::sync::RwLock;

/// A device's connection to its home provider's client API.
pub struct ClientApi {
    home: String,
    connector: Connector,
    token: RwLock<Option<String>>,
}

impl ClientApi {
    /// A client of provider `home` reachable at `addr` (`host:port`), trusting `roots`.
    pub fn new(
        home: &str,
        addr: &str,
        roots: &[CertificateDer<'static>],
        limits: NetLimits,
    ) -> Result<Self, CallError> {
        let home = home.to_ascii_lowercase();
        let connector = Connector::anonymous(
            roots,
            HashMap::from([(home.clone(), addr.to_owned())]),
            limits,
        )?;
        Ok(Self {
            home,
            connector,
            token: RwLock::new(None),
        })
    }

    /// The home provider.
    pub fn home(&self) -> &str {
        &self.home
    }

    /// Sets the bearer token (issued at device registration); sent with every later request.
    pub fn set_token(&self, token: impl Into<String>) {
        if let Ok(mut t) = self.token.write() {
            *t = Some(token.into());
        }
    }

    fn headers(&self) -> Result<HeaderMap, CallError> {
        let mut headers = HeaderMap::new();
        let token = self.token.read().ok().and_then(|t| t.clone());
        if let Some(token) = token {
            let v = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| CallError::Setup("the token is not a header value".into()))?;
            headers.insert(http::header::AUTHORIZATION, v);
        }
        Ok(headers)
    }

    /// Sends `method` to `/client/v1/<rest>` (`rest` without a leading `/`, query allowed).
    pub async fn request(
        &self,
        method: Method,
        rest: &str,
        body: Bytes,
    ) -> Result<Response, CallError> {
        let path = format!("{CLIENT_API_PREFIX}{}", rest.trim_start_matches('/'));
        self.connector
            .request(&self.home, method, &path, self.headers()?, body)
            .await
    }

    /// `POST /client/v1/<rest>` with a body of `length` octets from `body`, piece by piece
    /// (`NET-stream`).
    pub async fn upload(
        &self,
        rest: &str,
        length: u64,
        body: crate::stream::Pieces,
    ) -> Result<Response, CallError> {
        let path = format!("{CLIENT_API_PREFIX}{}", rest.trim_start_matches('/'));
        self.connector
            .upload(
                &self.home,
                Method::POST,
                &path,
                self.headers()?,
                length,
                body,
            )
            .await
    }

    /// `GET /client/v1/<rest>`, the answer read piece by piece (`NET-stream`).
    pub async fn download(&self, rest: &str) -> Result<super::Download, CallError> {
        let path = format!("{CLIENT_API_PREFIX}{}", rest.trim_start_matches('/'));
        self.connector
            .download(&self.home, Method::GET, &path, self.headers()?)
            .await
    }

    /// The underlying connector (for example to read the home node's directory).
    pub fn connector(&self) -> &Connector {
        &self.connector
    }
}
