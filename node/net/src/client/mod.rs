//! Calling other providers: one long-lived QUIC connection per peer provider, a stream per
//! request, reconnecting when the connection dies (`NET-pool`); and the client API of a home
//! node for devices ([`ClientApi`], no client certificate, a bearer token).

mod call;
mod device;
mod stream;

pub use device::ClientApi;
pub use stream::Download;

use crate::limits::NetLimits;
use crate::message::Response;
use crate::tls::client_config;
use bytes::Bytes;
use http::{HeaderMap, Method};
use quinn::crypto::rustls::QuicClientConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::time::Instant;

pub(crate) type Sender = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;

/// Why a call got no answer (an answer with an error status is a [`Response`]).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No address is configured for the provider.
    #[error("no address is configured for {0}")]
    UnknownPeer(String),
    /// The configured address does not resolve.
    #[error("the address {addr} of {peer} does not resolve: {reason}")]
    Resolve {
        /// The provider.
        peer: String,
        /// The configured `host:port`.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The connection could not be made (unreachable, TLS refused in either direction).
    #[error("cannot connect to {peer}: {reason}")]
    Connect {
        /// The provider.
        peer: String,
        /// Why.
        reason: String,
    },
    /// The request failed on the wire (the connection or stream broke; the peer may or may
    /// not have processed it).
    #[error("request to {peer} failed: {reason}")]
    Request {
        /// The provider.
        peer: String,
        /// Why.
        reason: String,
    },
    /// No answer in time (`NET-request-timeout`); the peer may or may not have processed it.
    #[error("{peer} did not answer within {ms} ms")]
    Timeout {
        /// The provider.
        peer: String,
        /// The limit.
        ms: u128,
    },
    /// The answer is larger than the limit (`NET-body-limit`).
    #[error("the answer of {peer} is larger than {max} bytes")]
    TooLarge {
        /// The provider.
        peer: String,
        /// The limit.
        max: usize,
    },
    /// Local setup (TLS material, sockets).
    #[error("client setup: {0}")]
    Setup(String),
}

impl From<crate::tls::TlsError> for CallError {
    fn from(e: crate::tls::TlsError) -> Self {
        CallError::Setup(e.to_string())
    }
}

/// One pooled connection.
#[derive(Clone)]
pub(crate) struct Live {
    pub(crate) conn: quinn::Connection,
    pub(crate) sender: Sender,
}

type Slot = Arc<tokio::sync::Mutex<Option<Live>>>;

/// HTTP/3 connections to named providers, one per provider, reused by every request.
pub struct Connector {
    v4: std::sync::OnceLock<quinn::Endpoint>,
    v6: std::sync::OnceLock<quinn::Endpoint>,
    config: quinn::ClientConfig,
    from: Option<String>,
    limits: NetLimits,
    addrs: std::sync::RwLock<HashMap<String, String>>,
    slots: std::sync::Mutex<HashMap<String, Slot>>,
}

impl Connector {
    /// A connector for provider `from`, presenting its certificate, to peers at `addrs`
    /// (provider domain → `host:port`, the static map of a local federation).
    pub fn provider(
        from: &str,
        chain: &[CertificateDer<'static>],
        key: &PrivateKeyDer<'static>,
        roots: &[CertificateDer<'static>],
        addrs: HashMap<String, String>,
        limits: NetLimits,
    ) -> Result<Self, CallError> {
        Self::build(
            Some(from.to_ascii_lowercase()),
            client_config(roots, Some((chain, key)))?,
            addrs,
            limits,
        )
    }

    /// A connector without a client certificate (a device calling its home node's client
    /// API, or anyone reading a directory). It sends no `From`.
    pub fn anonymous(
        roots: &[CertificateDer<'static>],
        addrs: HashMap<String, String>,
        limits: NetLimits,
    ) -> Result<Self, CallError> {
        Self::build(None, client_config(roots, None)?, addrs, limits)
    }

    fn build(
        from: Option<String>,
        tls: rustls::ClientConfig,
        addrs: HashMap<String, String>,
        limits: NetLimits,
    ) -> Result<Self, CallError> {
        let crypto =
            QuicClientConfig::try_from(tls).map_err(|e| CallError::Setup(e.to_string()))?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(Arc::new(limits.transport()));
        Ok(Self {
            v4: std::sync::OnceLock::new(),
            v6: std::sync::OnceLock::new(),
            config,
            from,
            limits,
            addrs: std::sync::RwLock::new(
                addrs
                    .into_iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v))
                    .collect(),
            ),
            slots: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// Sets or changes a peer's address (`host:port`); the next request uses it. A pooled
    /// connection to the old address is dropped (the peer moved: it would only time out).
    pub fn set_addr(&self, domain: &str, addr: impl Into<String>) {
        let domain = domain.to_ascii_lowercase();
        let addr = addr.into();
        let changed = match self.addrs.write() {
            Ok(mut a) => a
                .insert(domain.clone(), addr.clone())
                .is_some_and(|old| old != addr),
            Err(_) => false,
        };
        if changed && let Ok(mut slots) = self.slots.lock() {
            slots.remove(&domain);
        }
    }

    /// The configured peers, `(domain, host:port)` by domain (the admin listener's status).
    pub fn addrs(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .addrs
            .read()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Whether an address is configured for `domain` (a peer this connector may call).
    pub fn knows(&self, domain: &str) -> bool {
        self.addrs
            .read()
            .is_ok_and(|a| a.contains_key(&domain.to_ascii_lowercase()))
    }

    /// The limits in use.
    pub fn limits(&self) -> NetLimits {
        self.limits
    }

    /// How many pooled connections are open (for tests and metrics).
    pub async fn connections(&self) -> usize {
        let slots: Vec<Slot> = match self.slots.lock() {
            Ok(s) => s.values().cloned().collect(),
            Err(_) => return 0,
        };
        let mut n = 0;
        for s in slots {
            if s.lock()
                .await
                .as_ref()
                .is_some_and(|l| l.conn.close_reason().is_none())
            {
                n += 1;
            }
        }
        n
    }

    fn slot(&self, domain: &str) -> Slot {
        match self.slots.lock() {
            Ok(mut s) => s.entry(domain.to_owned()).or_default().clone(),
            Err(_) => Slot::default(),
        }
    }

    fn endpoint(&self, addr: SocketAddr) -> Result<quinn::Endpoint, CallError> {
        let (cell, bind) = if addr.is_ipv6() {
            (&self.v6, SocketAddr::from(([0u16; 8], 0)))
        } else {
            (&self.v4, SocketAddr::from(([0u8; 4], 0)))
        };
        if let Some(e) = cell.get() {
            return Ok(e.clone());
        }
        let e = quinn::Endpoint::client(bind)
            .map_err(|e| CallError::Setup(format!("cannot bind {bind}: {e}")))?;
        Ok(cell.get_or_init(|| e).clone())
    }

    async fn resolve(&self, domain: &str) -> Result<SocketAddr, CallError> {
        let addr = self
            .addrs
            .read()
            .ok()
            .and_then(|a| a.get(domain).cloned())
            .ok_or_else(|| CallError::UnknownPeer(domain.to_owned()))?;
        let fail = |reason: String| CallError::Resolve {
            peer: domain.to_owned(),
            addr: addr.clone(),
            reason,
        };
        let mut found = tokio::net::lookup_host(addr.as_str())
            .await
            .map_err(|e| fail(e.to_string()))?;
        found.next().ok_or_else(|| fail("no address".into()))
    }

    /// The pooled connection to `domain`, made if there is none or it died.
    async fn live(&self, domain: &str) -> Result<Live, CallError> {
        let slot = self.slot(domain);
        let mut guard = slot.lock().await;
        if let Some(l) = guard.as_ref()
            && l.conn.close_reason().is_none()
        {
            return Ok(l.clone());
        }
        *guard = None;
        let addr = self.resolve(domain).await?;
        let err = |reason: String| CallError::Connect {
            peer: domain.to_owned(),
            reason,
        };
        let conn = self
            .endpoint(addr)?
            .connect_with(self.config.clone(), addr, domain)
            .map_err(|e| err(e.to_string()))?
            .await
            .map_err(|e| err(e.to_string()))?;
        let (mut driver, sender) = h3::client::builder()
            .max_field_section_size(self.limits.max_header_bytes)
            .build::<_, _, Bytes>(h3_quinn::Connection::new(conn.clone()))
            .await
            .map_err(|e| err(e.to_string()))?;
        let peer = domain.to_owned();
        tokio::spawn(async move {
            let e = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
            tracing::debug!(%peer, error = %e, "HTTP/3 connection closed");
        });
        tracing::debug!(peer = %domain, %addr, "connected");
        let live = Live { conn, sender };
        *guard = Some(live.clone());
        Ok(live)
    }

    /// Drops the pooled connection if it is still `conn`.
    async fn forget(&self, domain: &str, conn: &quinn::Connection) {
        let slot = self.slot(domain);
        let mut guard = slot.lock().await;
        if guard
            .as_ref()
            .is_some_and(|l| l.conn.stable_id() == conn.stable_id())
        {
            *guard = None;
        }
    }

    /// Sends one request to provider `domain` on its pooled connection: `:authority` is the
    /// domain, `From: mimi@<us>` is set for providers, `content-length` always. A request that
    /// could not even be opened on a dead or closing connection is retried once on a new
    /// connection; one that may have reached the peer is not (`NET-pool`). The whole call,
    /// connecting included, is bounded by the request timeout.
    pub async fn request(
        &self,
        domain: &str,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response, CallError> {
        let domain = domain.to_ascii_lowercase();
        if !path.starts_with('/') {
            return Err(CallError::Setup(format!(
                "the path {path:?} does not start with '/'"
            )));
        }
        let deadline = Instant::now() + self.limits.request_timeout;
        let timeout = || CallError::Timeout {
            peer: domain.clone(),
            ms: self.limits.request_timeout.as_millis(),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let live = tokio::time::timeout_at(deadline, self.live(&domain))
                .await
                .map_err(|_| timeout())??;
            // NET-pool-dead: what the peer has sent us so far on this connection.
            let rx_before = live.conn.stats().udp_rx.datagrams;
            let call = call::call(
                live.sender.clone(),
                &domain,
                self.from.as_deref(),
                self.limits.max_body,
                method.clone(),
                path,
                &headers,
                body.clone(),
            );
            match tokio::time::timeout_at(deadline, call).await {
                Ok(Ok(r)) => return Ok(r),
                Ok(Err(call::Failure::NotSent(reason))) => {
                    self.forget(&domain, &live.conn).await;
                    if attempt >= 2 {
                        return Err(CallError::Request {
                            peer: domain,
                            reason,
                        });
                    }
                }
                Ok(Err(call::Failure::Failed(e))) => {
                    if live.conn.close_reason().is_some() {
                        self.forget(&domain, &live.conn).await;
                    }
                    return Err(e);
                }
                Err(_) => {
                    // NET-pool-dead: not one datagram from the peer (not even an ACK of the
                    // request) for the whole timeout: the peer is gone (killed, its address
                    // now someone else's, or cut off). The pooled connection would otherwise
                    // linger until the QUIC idle timeout, failing every request meanwhile
                    // (found by mimi-lab's hub-crash scenario); the next request reconnects.
                    if live.conn.stats().udp_rx.datagrams == rx_before {
                        self.forget(&domain, &live.conn).await;
                        live.conn.close(0u32.into(), b"no answer");
                    }
                    return Err(timeout());
                }
            }
        }
    }

    /// Closes every connection (for a clean exit).
    pub fn close(&self) {
        for e in [self.v4.get(), self.v6.get()].into_iter().flatten() {
            e.close(0u32.into(), b"bye");
        }
    }
}
