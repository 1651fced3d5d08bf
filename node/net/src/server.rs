//! The HTTP/3 server of a node: one QUIC endpoint for peers (mutual TLS) and devices (server
//! TLS + bearer token, checked by the application). Every request is authenticated here
//! before the application sees it; every refusal is answered with a status and a reason.

use crate::limits::NetLimits;
use crate::message::{Peer, Request, Response};
use crate::paths::{CLIENT_API_PREFIX, DIRECTORY_PATH};
use crate::tls::{TlsMaterial, server_config};
use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use quinn::crypto::rustls::QuicServerConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// The application.
pub trait Handler: Send + Sync + 'static {
    /// Answers one authenticated request.
    fn handle(&self, req: Request) -> Pin<Box<dyn Future<Output = Response> + Send + '_>>;
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

/// A running server.
pub struct Server {
    endpoint: quinn::Endpoint,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    domain: String,
    limits: NetLimits,
    handler: Arc<dyn Handler>,
}

impl Server {
    /// Listens on `addr` (port 0 picks one) as provider `domain`.
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
        let endpoint = quinn::Endpoint::server(cfg, addr)
            .map_err(|source| ServerError::Bind { addr, source })?;
        let shared = Arc::new(Shared {
            domain: domain.to_ascii_lowercase(),
            limits,
            handler,
        });
        let (stop, stopped) = watch::channel(false);
        let ep = endpoint.clone();
        let task = tokio::spawn(accept_loop(ep, shared, stopped));
        Ok(Self {
            endpoint,
            stop,
            task,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Stops accepting, lets requests in flight finish (up to `grace`), then closes
    /// (`NET-graceful-shutdown`).
    pub async fn shutdown(self, grace: std::time::Duration) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(grace, self.task).await;
        self.endpoint.close(0u32.into(), b"shutting down");
        let _ = tokio::time::timeout(grace, self.endpoint.wait_idle()).await;
    }
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                let shared = shared.clone();
                let stopped = stopped.clone();
                conns.spawn(async move {
                    match incoming.await {
                        Ok(conn) => serve_connection(conn, shared, stopped).await,
                        Err(e) => tracing::debug!(error = %e, "handshake failed"),
                    }
                });
            }
        }
    }
    endpoint.set_server_config(None);
    while conns.join_next().await.is_some() {}
}

fn peer_leaf(conn: &quinn::Connection) -> Option<CertificateDer<'static>> {
    conn.peer_identity()
        .and_then(|id| id.downcast::<Vec<CertificateDer<'static>>>().ok())
        .and_then(|certs| certs.first().cloned())
}

async fn serve_connection(
    conn: quinn::Connection,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let remote = conn.remote_address();
    let leaf = peer_leaf(&conn);
    let mut h3 =
        match h3::server::Connection::<_, Bytes>::new(h3_quinn::Connection::new(conn)).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(%remote, error = %e, "HTTP/3 setup failed");
                return;
            }
        };
    let leaf = Arc::new(leaf);
    let slots = Arc::new(Semaphore::new(shared.limits.max_streams as usize));
    let mut requests = JoinSet::new();
    loop {
        let next = tokio::select! {
            _ = stopped.changed() => None,
            r = h3.accept() => match r {
                Ok(Some(resolver)) => Some(resolver),
                Ok(None) => None,
                Err(e) => {
                    tracing::debug!(%remote, error = %e, "connection ended");
                    None
                }
            },
        };
        let Some(resolver) = next else { break };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let shared = shared.clone();
        let leaf = leaf.clone();
        requests.spawn(async move {
            let _permit = permit;
            match resolver.resolve_request().await {
                Ok((req, stream)) => {
                    serve_request(req, stream, &shared, leaf.as_ref().as_ref(), remote).await
                }
                Err(e) => tracing::debug!(%remote, error = %e, "bad request headers"),
            }
        });
    }
    // Graceful: requests in flight finish.
    while requests.join_next().await.is_some() {}
    let _ = h3.shutdown(0).await;
}

type Stream = h3::server::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

async fn serve_request(
    req: http::Request<()>,
    mut stream: Stream,
    shared: &Shared,
    leaf: Option<&CertificateDer<'static>>,
    remote: SocketAddr,
) {
    let deadline = shared.limits.request_timeout;
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    let response =
        match tokio::time::timeout(deadline, handle(req, &mut stream, shared, leaf)).await {
            Ok(r) => r,
            Err(_) => Response::error(
                StatusCode::REQUEST_TIMEOUT,
                format!("the request took longer than {} ms", deadline.as_millis()),
            ),
        };
    tracing::info!(%remote, %method, %path, status = response.status.as_u16(), "request");
    send(&mut stream, response).await;
}

async fn send(stream: &mut Stream, r: Response) {
    let mut builder = http::Response::builder().status(r.status);
    if let Some(h) = builder.headers_mut() {
        h.extend(r.headers);
        if let Ok(v) = http::HeaderValue::from_str(&r.body.len().to_string()) {
            h.insert(http::header::CONTENT_LENGTH, v);
        }
    }
    let Ok(resp) = builder.body(()) else { return };
    if stream.send_response(resp).await.is_err() {
        return;
    }
    if !r.body.is_empty() && stream.send_data(r.body).await.is_err() {
        return;
    }
    let _ = stream.finish().await;
}

/// `From: mimi@<domain>` (protocol-06 §4.1).
fn from_domain(headers: &HeaderMap) -> Result<String, Box<Response>> {
    let v = headers.get(http::header::FROM).ok_or_else(|| {
        Response::error(
            StatusCode::BAD_REQUEST,
            "missing From: mimi@<your domain> (draft-ietf-mimi-protocol-06 §4.1)",
        )
    })?;
    let v = v
        .to_str()
        .map_err(|_| Response::error(StatusCode::BAD_REQUEST, "From is not text"))?;
    v.trim()
        .strip_prefix("mimi@")
        .filter(|d| !d.is_empty())
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| {
            Response::error(
                StatusCode::BAD_REQUEST,
                format!("From {v:?} is not mimi@<domain> (draft-ietf-mimi-protocol-06 §4.1)"),
            )
        })
        .map_err(Box::new)
}

fn cert_valid_for(leaf: &CertificateDer<'static>, domain: &str) -> bool {
    let Ok(name) = ServerName::try_from(domain.to_owned()) else {
        return false;
    };
    webpki::EndEntityCert::try_from(leaf)
        .is_ok_and(|c| c.verify_is_valid_for_subject_name(&name).is_ok())
}

async fn handle(
    req: http::Request<()>,
    stream: &mut Stream,
    shared: &Shared,
    leaf: Option<&CertificateDer<'static>>,
) -> Response {
    // NET-authority: the request must name this provider (h3 does not check :authority).
    let host = req.uri().host().map(str::to_ascii_lowercase);
    if host.as_deref() != Some(shared.domain.as_str()) {
        return Response::error(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this is {}, not {}",
                shared.domain,
                host.unwrap_or_default()
            ),
        );
    }
    let path = req.uri().path().to_owned();
    let peer = if path.starts_with(CLIENT_API_PREFIX) || path == DIRECTORY_PATH {
        Peer::Anonymous
    } else {
        // NET-mtls-required, NET-mtls-from
        let Some(leaf) = leaf else {
            tracing::warn!(%path, "provider request without a client certificate");
            return Response::error(
                StatusCode::UNAUTHORIZED,
                "a client certificate of the calling provider is required (mutual TLS, draft-ietf-mimi-protocol-06 §4.1)",
            );
        };
        let domain = match from_domain(req.headers()) {
            Ok(d) => d,
            Err(r) => return *r,
        };
        if !cert_valid_for(leaf, &domain) {
            tracing::warn!(%path, claimed = %domain, "From does not match the client certificate");
            return Response::error(
                StatusCode::FORBIDDEN,
                format!("the client certificate is not valid for {domain} named in From"),
            );
        }
        Peer::Provider(domain)
    };
    let body = match read_body(req.headers(), stream, shared.limits.max_body).await {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let (parts, ()) = req.into_parts();
    let request = Request {
        peer,
        method: parts.method,
        path: parts
            .uri
            .path_and_query()
            .map_or(path, |p| p.as_str().to_owned()),
        headers: parts.headers,
        body,
    };
    // The application runs in its own task: a panic there becomes a 500, never an
    // unanswered stream.
    let handler = shared.handler.clone();
    match tokio::spawn(async move { handler.handle(request).await }).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "handler failed");
            Response::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error while handling the request",
            )
        }
    }
}

/// Reads the body, counting bytes against the limit and against content-length
/// (`NET-body-limit`; h3 checks neither).
async fn read_body(
    headers: &HeaderMap,
    stream: &mut Stream,
    max: usize,
) -> Result<Bytes, Box<Response>> {
    let declared = match headers.get(http::header::CONTENT_LENGTH) {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
                .ok_or_else(|| {
                    Response::error(StatusCode::BAD_REQUEST, "content-length is not a number")
                })?,
        ),
        None => None,
    };
    if declared.is_some_and(|n| n > max) {
        stream.stop_sending(h3::error::Code::H3_REQUEST_REJECTED);
        return Err(Box::new(Response::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body may be at most {max} bytes"),
        )));
    }
    let mut body = BytesMut::new();
    loop {
        match stream.recv_data().await {
            Ok(Some(mut chunk)) => {
                if body.len() + chunk.remaining() > max {
                    stream.stop_sending(h3::error::Code::H3_REQUEST_REJECTED);
                    return Err(Box::new(Response::error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("the body may be at most {max} bytes"),
                    )));
                }
                while chunk.has_remaining() {
                    let c = chunk.chunk();
                    body.extend_from_slice(c);
                    let n = c.len();
                    chunk.advance(n);
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Err(Box::new(Response::error(
                    StatusCode::BAD_REQUEST,
                    format!("the request body could not be read: {e}"),
                )));
            }
        }
    }
    if let Some(n) = declared
        && n != body.len()
    {
        return Err(Box::new(Response::error(
            StatusCode::BAD_REQUEST,
            format!("content-length says {n} bytes, the body has {}", body.len()),
        )));
    }
    Ok(body.freeze())
}
