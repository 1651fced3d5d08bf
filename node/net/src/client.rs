//! Calling other providers (one long-lived QUIC connection per peer, a stream per request;
//! `NET-pool`) and the client API of a home node (no client certificate).

use crate::limits::NetLimits;
use crate::message::Response;
use crate::tls::client_config;
use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method};
use quinn::crypto::rustls::QuicClientConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::Mutex;

type Sender = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;

/// Why a call failed (no answer at all; an answer with an error status is a [`Response`]).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No address is known for the provider.
    #[error("no address is configured for {0}")]
    UnknownPeer(String),
    /// The connection could not be made.
    #[error("cannot connect to {peer}: {reason}")]
    Connect {
        /// The provider.
        peer: String,
        /// Why.
        reason: String,
    },
    /// The request failed on the wire.
    #[error("request to {peer} failed: {reason}")]
    Request {
        /// The provider.
        peer: String,
        /// Why.
        reason: String,
    },
    /// No answer in time.
    #[error("{peer} did not answer within {ms} ms")]
    Timeout {
        /// The provider.
        peer: String,
        /// The limit.
        ms: u128,
    },
    /// The answer is larger than the limit.
    #[error("the answer of {peer} is larger than {max} bytes")]
    TooLarge {
        /// The provider.
        peer: String,
        /// The limit.
        max: usize,
    },
    /// TLS configuration.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// HTTP/3 connections to named servers, reused.
pub struct Connector {
    endpoint: quinn::Endpoint,
    config: quinn::ClientConfig,
    from: Option<String>,
    limits: NetLimits,
    addrs: std::sync::RwLock<HashMap<String, SocketAddr>>,
    conns: Mutex<HashMap<String, Sender>>,
}

impl Connector {
    /// A connector for provider `from` (presenting its certificate) to peers at `addrs`.
    pub fn provider(
        from: &str,
        chain: &[CertificateDer<'static>],
        key: &PrivateKeyDer<'static>,
        roots: &[CertificateDer<'static>],
        addrs: HashMap<String, SocketAddr>,
        limits: NetLimits,
    ) -> Result<Self, CallError> {
        Self::build(
            Some(from.to_ascii_lowercase()),
            client_config(roots, Some((chain, key)))?,
            addrs,
            limits,
        )
    }

    /// A connector for a device (no client certificate) to its home node.
    pub fn device(
        roots: &[CertificateDer<'static>],
        addrs: HashMap<String, SocketAddr>,
        limits: NetLimits,
    ) -> Result<Self, CallError> {
        Self::build(None, client_config(roots, None)?, addrs, limits)
    }

    fn build(
        from: Option<String>,
        tls: rustls::ClientConfig,
        addrs: HashMap<String, SocketAddr>,
        limits: NetLimits,
    ) -> Result<Self, CallError> {
        let crypto = QuicClientConfig::try_from(tls).map_err(|e| CallError::Connect {
            peer: "-".into(),
            reason: e.to_string(),
        })?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(Arc::new(limits.transport()));
        let bind: SocketAddr = if addrs.values().any(SocketAddr::is_ipv6) {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        }
        .parse()
        .map_err(|e: std::net::AddrParseError| CallError::Connect {
            peer: "-".into(),
            reason: e.to_string(),
        })?;
        let endpoint = quinn::Endpoint::client(bind).map_err(|e| CallError::Connect {
            peer: "-".into(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            endpoint,
            config,
            from,
            limits,
            addrs: std::sync::RwLock::new(
                addrs
                    .into_iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v))
                    .collect(),
            ),
            conns: Mutex::new(HashMap::new()),
        })
    }

    /// Sets or changes a peer's address.
    pub fn set_addr(&self, domain: &str, addr: SocketAddr) {
        if let Ok(mut a) = self.addrs.write() {
            a.insert(domain.to_ascii_lowercase(), addr);
        }
    }

    /// How many connections are open (for tests and metrics).
    pub async fn connections(&self) -> usize {
        self.conns.lock().await.len()
    }

    async fn sender(&self, domain: &str) -> Result<Sender, CallError> {
        let mut conns = self.conns.lock().await;
        if let Some(s) = conns.get(domain) {
            return Ok(s.clone());
        }
        let addr = self
            .addrs
            .read()
            .ok()
            .and_then(|a| a.get(domain).copied())
            .ok_or_else(|| CallError::UnknownPeer(domain.to_owned()))?;
        let err = |reason: String| CallError::Connect {
            peer: domain.to_owned(),
            reason,
        };
        let connecting = self
            .endpoint
            .connect_with(self.config.clone(), addr, domain)
            .map_err(|e| err(e.to_string()))?;
        let conn = tokio::time::timeout(self.limits.request_timeout, connecting)
            .await
            .map_err(|_| err("handshake timed out".into()))?
            .map_err(|e| err(e.to_string()))?;
        let (mut driver, sender) = h3::client::new(h3_quinn::Connection::new(conn))
            .await
            .map_err(|e| err(e.to_string()))?;
        tokio::spawn(async move {
            let e = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
            tracing::debug!(error = %e, "HTTP/3 connection closed");
        });
        conns.insert(domain.to_owned(), sender.clone());
        Ok(sender)
    }

    async fn forget(&self, domain: &str) {
        self.conns.lock().await.remove(domain);
    }

    /// Sends one request to `domain` (`:authority` = domain, `From: mimi@<us>` for providers).
    /// A broken pooled connection is replaced once.
    pub async fn request(
        &self,
        domain: &str,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response, CallError> {
        let domain = domain.to_ascii_lowercase();
        let timeout = self.limits.request_timeout;
        for attempt in 0..2 {
            let sender = self.sender(&domain).await?;
            let call = self.call(
                sender,
                &domain,
                method.clone(),
                path,
                headers.clone(),
                body.clone(),
            );
            match tokio::time::timeout(timeout, call).await {
                Ok(Ok(r)) => return Ok(r),
                Ok(Err(e)) => {
                    self.forget(&domain).await;
                    if attempt == 1 || !matches!(e, CallError::Request { .. }) {
                        return Err(e);
                    }
                }
                Err(_) => {
                    return Err(CallError::Timeout {
                        peer: domain,
                        ms: timeout.as_millis(),
                    });
                }
            }
        }
        Err(CallError::Request {
            peer: domain,
            reason: "retries exhausted".into(),
        })
    }

    async fn call(
        &self,
        mut sender: Sender,
        domain: &str,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response, CallError> {
        let fail = |reason: String| CallError::Request {
            peer: domain.to_owned(),
            reason,
        };
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("https://{domain}{path}"));
        if let Some(h) = req.headers_mut() {
            h.extend(headers);
            if let Some(from) = &self.from
                && let Ok(v) = HeaderValue::from_str(&format!("mimi@{from}"))
            {
                h.insert(http::header::FROM, v);
            }
            if let Ok(v) = HeaderValue::from_str(&body.len().to_string()) {
                h.insert(http::header::CONTENT_LENGTH, v);
            }
        }
        let req = req.body(()).map_err(|e| fail(e.to_string()))?;
        let mut stream = sender
            .send_request(req)
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !body.is_empty() {
            stream
                .send_data(body)
                .await
                .map_err(|e| fail(e.to_string()))?;
        }
        stream.finish().await.map_err(|e| fail(e.to_string()))?;
        let resp = stream
            .recv_response()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let mut out = BytesMut::new();
        while let Some(mut chunk) = stream.recv_data().await.map_err(|e| fail(e.to_string()))? {
            if out.len() + chunk.remaining() > self.limits.max_body {
                stream.stop_sending(h3::error::Code::H3_REQUEST_CANCELLED);
                return Err(CallError::TooLarge {
                    peer: domain.to_owned(),
                    max: self.limits.max_body,
                });
            }
            while chunk.has_remaining() {
                let c = chunk.chunk();
                out.extend_from_slice(c);
                let n = c.len();
                chunk.advance(n);
            }
        }
        let (parts, ()) = resp.into_parts();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body: out.freeze(),
        })
    }

    /// Closes every connection.
    pub fn close(&self) {
        self.endpoint.close(0u32.into(), b"bye");
    }
}
