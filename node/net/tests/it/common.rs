//! A test federation: a CA, servers with an echoing handler, provider and device clients.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use mimi_net::client::{CallError, Connector};
use mimi_net::paths::{self, Endpoint};
use mimi_net::pki::{Ca, Issued};
use mimi_net::server::{Handler, HandlerFuture, Outcome, Server};
use mimi_net::tls::TlsMaterial;
use mimi_net::{NetLimits, Peer, Request, Response};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Bound on every wait in a test.
pub const T: Duration = Duration::from_secs(15);

/// Echoes who called and what. `…/hold` waits until the test releases it (a semaphore
/// permit), `…/panic` panics, `…/sleep` sleeps for a long time.
pub struct Echo {
    /// Requests that reached the application.
    pub calls: AtomicUsize,
    /// Releases held requests.
    pub release: Semaphore,
    /// The last bearer token seen.
    pub token: std::sync::Mutex<Option<String>>,
    /// Every outcome observed: (caller, status).
    pub observed: std::sync::Mutex<Vec<(Option<Peer>, u16)>>,
}

impl Echo {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Waits (bounded) until `n` requests have reached the application.
    pub async fn wait_calls(&self, n: usize) {
        for _ in 0..1500 {
            if self.calls() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{n} calls never arrived (saw {})", self.calls());
    }
}

impl Handler for Echo {
    fn observe(&self, o: &Outcome<'_>) {
        self.observed
            .lock()
            .unwrap()
            .push((o.peer.cloned(), o.status.as_u16()));
    }

    fn handle(&self, req: Request) -> HandlerFuture<'_> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut t) = self.token.lock() {
                *t = req.bearer_token().map(str::to_owned);
            }
            let who = match &req.peer {
                Peer::Provider(d) => format!("provider {d}"),
                Peer::Anonymous => "anonymous".to_owned(),
            };
            if req.path.ends_with("/hold") {
                let _ = self.release.acquire().await.map(|p| p.forget());
            }
            if req.path.ends_with("/sleep") {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            if req.path.ends_with("/panic") {
                panic!("handler bug");
            }
            Response::new(
                StatusCode::OK,
                format!("{who} {} {} {}", req.method, req.path, req.body.len()),
            )
        })
    }
}

pub fn material(issued: &Issued, ca: &Ca) -> TlsMaterial {
    TlsMaterial::from_pem(&issued.cert_pem, &issued.key_pem, &ca.cert_pem).unwrap()
}

pub struct Node {
    pub server: Server,
    pub addr: SocketAddr,
    pub echo: Arc<Echo>,
}

pub fn start(ca: &Ca, domain: &str, limits: NetLimits) -> Node {
    start_with(domain, &material(&ca.issue(domain).unwrap(), ca), limits)
}

/// Provider `domain` serving with the given TLS material.
pub fn start_with(domain: &str, tls: &TlsMaterial, limits: NetLimits) -> Node {
    let echo = Arc::new(Echo {
        calls: AtomicUsize::new(0),
        release: Semaphore::new(0),
        token: std::sync::Mutex::new(None),
        observed: std::sync::Mutex::new(Vec::new()),
    });
    let server = Server::start(
        domain,
        "127.0.0.1:0".parse().unwrap(),
        tls,
        limits,
        echo.clone(),
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    Node { server, addr, echo }
}

/// A provider client holding a certificate for `cert_of` (issued by `issuer`), claiming to be
/// `claims`, trusting `ca`, knowing `to` at `addr`.
pub fn provider_as(
    issuer: &Ca,
    cert_of: &str,
    claims: &str,
    ca: &Ca,
    to: &str,
    addr: SocketAddr,
    limits: NetLimits,
) -> Connector {
    let m = material(&issuer.issue(cert_of).unwrap(), ca);
    Connector::provider(
        claims,
        &m.chain,
        &m.key,
        &m.roots,
        HashMap::from([(to.to_owned(), addr.to_string())]),
        limits,
    )
    .unwrap()
}

/// An honest provider client `me` of the federation `ca`.
pub fn provider(ca: &Ca, me: &str, to: &str, addr: SocketAddr) -> Connector {
    provider_as(ca, me, me, ca, to, addr, NetLimits::default())
}

pub fn anonymous(ca: &Ca, to: &str, addr: SocketAddr) -> Connector {
    Connector::anonymous(
        &mimi_net::pki::certs_from_pem(&ca.cert_pem, "ca").unwrap(),
        HashMap::from([(to.to_owned(), addr.to_string())]),
        NetLimits::default(),
    )
    .unwrap()
}

pub fn notify_path() -> String {
    paths::path(Endpoint::Notify, "mimi://a.example/r/clubhouse")
}

pub async fn post(
    c: &Connector,
    to: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<Response, CallError> {
    tokio::time::timeout(
        T,
        c.request(to, Method::POST, path, HeaderMap::new(), Bytes::from(body)),
    )
    .await
    .expect("bounded")
}

/// A raw HTTP/3 request, for what the [`Connector`] never sends (wrong content-length, no
/// From, chosen authority): returns status and body text.
pub async fn raw(
    tls: rustls::ClientConfig,
    addr: SocketAddr,
    server_name: &str,
    req: http::Request<()>,
    body: &[u8],
) -> (StatusCode, String) {
    try_raw(tls, addr, server_name, req, body, true)
        .await
        .unwrap()
}

/// [`raw`], with the client's refusal to send as an error; `finish: false` leaves the
/// request body open.
pub async fn try_raw(
    tls: rustls::ClientConfig,
    addr: SocketAddr,
    server_name: &str,
    req: http::Request<()>,
    body: &[u8],
    finish: bool,
) -> Result<(StatusCode, String), String> {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let run = async {
        let conn = ep.connect(addr, server_name).unwrap().await.unwrap();
        let (mut driver, mut send) = h3::client::new(h3_quinn::Connection::new(conn))
            .await
            .unwrap();
        tokio::spawn(async move { std::future::poll_fn(|cx| driver.poll_close(cx)).await });
        let mut stream = send.send_request(req).await.map_err(|e| e.to_string())?;
        if !body.is_empty() {
            let _ = stream.send_data(Bytes::copy_from_slice(body)).await;
        }
        if finish {
            let _ = stream.finish().await;
        }
        let resp = stream.recv_response().await.unwrap();
        let mut text = Vec::new();
        while let Some(chunk) = stream.recv_data().await.unwrap() {
            use bytes::Buf;
            text.extend_from_slice(chunk.chunk());
        }
        Ok((resp.status(), String::from_utf8_lossy(&text).into_owned()))
    };
    let r = tokio::time::timeout(T, run).await.expect("bounded");
    ep.close(0u32.into(), b"");
    r
}

/// A provider's TLS client configuration.
pub fn provider_tls(ca: &Ca, me: &str) -> rustls::ClientConfig {
    let m = material(&ca.issue(me).unwrap(), ca);
    mimi_net::tls::client_config(&m.roots, Some((&m.chain, &m.key))).unwrap()
}
