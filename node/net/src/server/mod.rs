//! The HTTP/3 server of a node: one QUIC endpoint for peers (mutual TLS) and devices (server
//! TLS + bearer token, checked by the application). Every request is authenticated here
//! before the application sees it; every request is answered with a status (a refusal with a
//! reason), never left open.

mod auth;
mod body;
mod request;
mod streamed;

pub use streamed::{BodyError, BodyStream};

use crate::limits::NetLimits;
use crate::message::{Request, Response};
use crate::stream::Reply;
use crate::tls::{TlsMaterial, server_config};
use auth::ConnAuth;
use bytes::Bytes;
use quinn::crypto::rustls::QuicServerConfig;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// The future a [`Handler`] returns.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Response> + Send + 'a>>;

/// The application: answers one authenticated request. A panic is answered with 500; a
/// handler that outlives the request's time is cancelled and answered with 504.
pub trait Handler: Send + Sync + 'static {
    /// Answers one authenticated request.
    fn handle(&self, req: Request) -> HandlerFuture<'_>;

    /// Sees the outcome of every request, refusals by the transport included (for metrics:
    /// requests by endpoint and status, latency). Called before the answer is sent; must
    /// be quick. The default does nothing.
    fn observe(&self, _outcome: &Outcome<'_>) {}

    /// Whether this request's body is read by the application piece by piece
    /// ([`Handler::handle_stream`]) instead of whole (`NET-stream`). Decided from the method
    /// and path (with query) before anything is read. The default: never.
    fn streams(&self, _method: &http::Method, _path: &str) -> bool {
        false
    }

    /// Answers a request [`Handler::streams`] chose: `req.body` is empty, the body is
    /// `body`. Each piece must arrive within the request timeout; there is no overall limit
    /// of size or time (the application sets its own). The default answers 404.
    fn handle_stream(&self, _req: Request, _body: BodyStream) -> StreamFuture<'_> {
        Box::pin(async {
            Reply::Whole(Response::error(
                http::StatusCode::NOT_FOUND,
                "no streamed endpoint here",
            ))
        })
    }
}

/// The future [`Handler::handle_stream`] returns.
pub type StreamFuture<'a> = Pin<Box<dyn Future<Output = Reply> + Send + 'a>>;

/// The outcome of one request, as given to [`Handler::observe`].
#[derive(Debug)]
pub struct Outcome<'a> {
    /// The caller, if authentication got that far.
    pub peer: Option<&'a crate::Peer>,
    /// Method.
    pub method: &'a http::Method,
    /// Path with query, as received.
    pub path: &'a str,
    /// The answer's status.
    pub status: http::StatusCode,
    /// From the request headers to the answer (before it is sent).
    pub elapsed: Duration,
}

struct FnHandler<F>(F);

impl<F, Fut> Handler for FnHandler<F>
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    fn handle(&self, req: Request) -> HandlerFuture<'_> {
        Box::pin((self.0)(req))
    }
}

/// A [`Handler`] from an async function or closure.
pub fn handler_fn<F, Fut>(f: F) -> Arc<dyn Handler>
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    Arc::new(FnHandler(f))
}

/// A server start failure.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// TLS material.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// Binding the socket.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// QUIC configuration.
    #[error("QUIC: {0}")]
    Quic(String),
}

/// A running server. Dropping it stops accepting like [`Server::shutdown`] without waiting.
pub struct Server {
    shared: Arc<Shared>,
    endpoint: quinn::Endpoint,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

pub(crate) struct Shared {
    pub(crate) connections: std::sync::atomic::AtomicUsize,
    pub(crate) domain: String,
    pub(crate) limits: NetLimits,
    pub(crate) handler: Arc<dyn Handler>,
}

pub(crate) type Stream = h3::server::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

impl Server {
    /// Listens on `addr` (port 0 picks one) as provider `domain`. Must run inside a tokio
    /// runtime.
    pub fn start(
        domain: &str,
        addr: SocketAddr,
        tls: &TlsMaterial,
        limits: NetLimits,
        handler: Arc<dyn Handler>,
    ) -> Result<Self, ServerError> {
        let crypto = QuicServerConfig::try_from(server_config(tls)?)
            .map_err(|e| ServerError::Quic(e.to_string()))?;
        let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        cfg.transport_config(Arc::new(limits.transport()));
        // NET-stateless-reset: the reset key is derived from the node's private key, so a
        // node restarted on the same address (after a crash) answers packets of the old
        // process's connections with a stateless reset its peers and devices accept (RFC 9000
        // §10.3): they drop the dead connection at once instead of at the idle timeout.
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            &[
                b"mimi-net stateless reset key\0".as_slice(),
                tls.key.secret_der(),
            ]
            .concat(),
        );
        let reset_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, digest.as_ref());
        let socket =
            std::net::UdpSocket::bind(addr).map_err(|source| ServerError::Bind { addr, source })?;
        let runtime = quinn::default_runtime().ok_or_else(|| {
            ServerError::Quic("no async runtime for QUIC (start the server inside tokio)".into())
        })?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::new(Arc::new(reset_key)),
            Some(cfg),
            socket,
            runtime,
        )
        .map_err(|source| ServerError::Bind { addr, source })?;
        let shared = Arc::new(Shared {
            connections: std::sync::atomic::AtomicUsize::new(0),
            domain: domain.to_ascii_lowercase(),
            limits,
            handler,
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(endpoint.clone(), shared.clone(), stopped));
        tracing::info!(domain, addr = ?endpoint.local_addr().ok(), "listening (HTTP/3)");
        Ok(Self {
            endpoint,
            stop,
            task,
            shared,
        })
    }

    /// Connections being served now (for metrics).
    pub fn connections(&self) -> usize {
        self.shared
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A reader of [`connections`](Self::connections) that outlives borrows of the server (for
    /// a metrics task).
    pub fn connection_counter(&self) -> Arc<dyn Fn() -> usize + Send + Sync> {
        let shared = self.shared.clone();
        Arc::new(move || {
            shared
                .connections
                .load(std::sync::atomic::Ordering::Relaxed)
        })
    }

    /// The provider this server is.
    pub fn domain(&self) -> &str {
        &self.shared.domain
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Graceful shutdown (`NET-graceful-shutdown`): stops accepting connections, sends each
    /// connection an HTTP/3 GOAWAY so that peers open no new requests, lets the requests in
    /// flight finish until `grace` has passed, then closes every connection (requests still
    /// running then are cancelled).
    pub async fn shutdown(self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        let _ = self.stop.send(true);
        let mut task = self.task;
        let finished = tokio::time::timeout_at(deadline, &mut task).await.is_ok();
        if !finished {
            tracing::warn!("shutdown grace period over: cancelling requests in flight");
        }
        // Close first, then cancel: a cancelled stream must not look like an empty answer.
        self.endpoint.close(h3_no_error(), b"shutting down");
        task.abort();
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
    }
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = stopped.changed(), if !stopping => {
                stopping = true;
                tracing::info!(domain = %shared.domain, "shutting down: refusing new connections");
            }
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                if stopping {
                    // CONNECTION_REFUSED, so that peers fail fast instead of timing out.
                    incoming.refuse();
                    continue;
                }
                let shared = shared.clone();
                let stopped = stopped.clone();
                conns.spawn(async move {
                    let remote = incoming.remote_address();
                    match incoming.await {
                        Ok(conn) => serve_connection(conn, shared, stopped).await,
                        // NET-mtls-unknown-ca: a certificate that does not chain to a
                        // trusted root ends here, in the handshake.
                        Err(e) => tracing::warn!(%remote, error = %e, "handshake refused"),
                    }
                });
            }
            // Reap finished connections so the set does not grow.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
        if stopping && conns.is_empty() {
            break;
        }
    }
}

async fn serve_connection(
    conn: quinn::Connection,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let remote = conn.remote_address();
    let _counted = Counted::new(&shared.connections);
    let auth = Arc::new(ConnAuth::new(&conn));
    let quic = conn.clone();
    let mut h3 = match h3::server::builder()
        .max_field_section_size(shared.limits.max_header_bytes)
        .build::<_, Bytes>(h3_quinn::Connection::new(conn))
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(%remote, error = %e, "HTTP/3 setup failed");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(shared.limits.max_streams as usize));
    let mut requests = JoinSet::new();
    let mut graceful = false;
    let mut accepting = true;
    loop {
        if (graceful || !accepting) && requests.is_empty() {
            break;
        }
        let mut start_goaway = false;
        tokio::select! {
            _ = stopped.changed(), if !graceful => start_goaway = true,
            r = h3.accept(), if accepting => match r {
                Ok(Some(resolver)) => {
                    // NET-streams-limit: more concurrent requests than allowed are answered 503.
                    let permit = slots.clone().try_acquire_owned().ok();
                    let shared = shared.clone();
                    let auth = auth.clone();
                    requests.spawn(async move {
                        match resolver.resolve_request().await {
                            Ok((req, stream)) => {
                                request::serve(req, stream, &shared, &auth, remote, permit).await;
                            }
                            Err(e) => tracing::debug!(%remote, error = %e, "malformed request headers"),
                        }
                    });
                }
                Ok(None) => accepting = false,
                Err(e) => {
                    tracing::debug!(%remote, error = %e, "connection ended");
                    accepting = false;
                }
            },
            Some(done) = requests.join_next(), if !requests.is_empty() => {
                if let Err(e) = done
                    && e.is_panic()
                {
                    // Our bug: that stream was dropped unanswered.
                    tracing::error!(%remote, error = %e, "a request task panicked");
                }
            }
            else => break,
        }
        if start_goaway {
            graceful = true;
            // NET-graceful-shutdown: GOAWAY; requests already accepted are processed, later
            // ones are rejected with H3_REQUEST_REJECTED by h3's accept (RFC 9114 §5.2), so
            // clients may retry them elsewhere.
            if let Err(e) = h3.shutdown(0).await {
                tracing::debug!(%remote, error = %e, "GOAWAY not sent");
                accepting = false;
            }
        }
    }
    if graceful {
        // quinn's close discards data not yet delivered: give the last answers a few round
        // trips to arrive (or the peer the chance to close first).
        let drain = (quic.rtt() * 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let _ = tokio::time::timeout(drain, quic.closed()).await;
    }
    quic.close(h3_no_error(), b"");
}

/// The QUIC application close code of a clean HTTP/3 close.
fn h3_no_error() -> quinn::VarInt {
    quinn::VarInt::from_u64(u64::from(h3::error::Code::H3_NO_ERROR))
        .unwrap_or(quinn::VarInt::from_u32(0))
}

/// Counts a connection while it is served.
struct Counted<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Counted<'a> {
    fn new(n: &'a std::sync::atomic::AtomicUsize) -> Self {
        n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(n)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
