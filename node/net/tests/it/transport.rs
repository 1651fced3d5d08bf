//! Real QUIC with mutual TLS on loopback, port 0; every wait bounded.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use mimi_net::client::{CallError, Connector};
use mimi_net::paths;
use mimi_net::pki::{Ca, Issued, certs_from_pem, key_from_pem};
use mimi_net::server::{Handler, Server};
use mimi_net::tls::TlsMaterial;
use mimi_net::{NetLimits, Peer, Request, Response};
use mimi_wire::directory::Endpoint;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// Echoes who called and what; `/v1/notify/slow` sleeps, `/v1/notify/panic` panics.
struct Echo {
    calls: AtomicUsize,
}

impl Handler for Echo {
    fn handle(&self, req: Request) -> Pin<Box<dyn Future<Output = Response> + Send + '_>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let who = match &req.peer {
                Peer::Provider(d) => format!("provider {d}"),
                Peer::Anonymous => "anonymous".to_owned(),
            };
            if req.path.ends_with("/slow") {
                tokio::time::sleep(Duration::from_millis(800)).await;
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

fn material(issued: &Issued, ca: &Ca) -> TlsMaterial {
    TlsMaterial {
        chain: certs_from_pem(&issued.cert_pem, "cert").unwrap(),
        key: Arc::new(key_from_pem(&issued.key_pem, "key").unwrap()),
        roots: certs_from_pem(&ca.cert_pem, "ca").unwrap(),
    }
}

struct Node {
    server: Server,
    addr: SocketAddr,
    echo: Arc<Echo>,
}

fn start(ca: &Ca, domain: &str, limits: NetLimits) -> Node {
    let issued = ca.issue(domain).unwrap();
    let echo = Arc::new(Echo {
        calls: AtomicUsize::new(0),
    });
    let server = Server::start(
        domain,
        "127.0.0.1:0".parse().unwrap(),
        &material(&issued, ca),
        limits,
        echo.clone(),
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    Node { server, addr, echo }
}

fn provider(
    ca: &Ca,
    cert_of: &str,
    claims: &str,
    to: &str,
    addr: SocketAddr,
    roots: &Ca,
) -> Connector {
    let issued = ca.issue(cert_of).unwrap();
    let m = material(&issued, roots);
    Connector::provider(
        claims,
        &m.chain,
        &m.key,
        &m.roots,
        HashMap::from([(to.to_owned(), addr)]),
        NetLimits::default(),
    )
    .unwrap()
}

fn device(ca: &Ca, to: &str, addr: SocketAddr) -> Connector {
    Connector::device(
        &certs_from_pem(&ca.cert_pem, "ca").unwrap(),
        HashMap::from([(to.to_owned(), addr)]),
        NetLimits::default(),
    )
    .unwrap()
}

fn notify() -> String {
    paths::path(Endpoint::Notify, "mimi://a.example/r/clubhouse")
}

async fn post(
    c: &Connector,
    to: &str,
    path: &str,
    body: &'static [u8],
) -> Result<Response, CallError> {
    tokio::time::timeout(
        T,
        c.request(
            to,
            Method::POST,
            path,
            HeaderMap::new(),
            Bytes::from_static(body),
        ),
    )
    .await
    .expect("bounded")
}

#[tokio::test]
async fn net_mtls_from_round_trip_and_one_connection_for_many_requests() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(&ca, "a.example", NetLimits::default());
    let b = provider(&ca, "b.example", "b.example", "a.example", a.addr, &ca);
    let r = post(&b, "a.example", &notify(), b"fanout").await.unwrap();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.text(), format!("provider b.example POST {} 6", notify()));
    for _ in 0..20 {
        assert_eq!(
            post(&b, "a.example", &notify(), b"x").await.unwrap().status,
            StatusCode::OK
        );
    }
    assert_eq!(b.connections().await, 1, "NET-pool: one connection reused");
    assert_eq!(a.echo.calls.load(Ordering::SeqCst), 21);
    a.server.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn net_mtls_required_refuses_provider_paths_without_a_certificate() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(&ca, "a.example", NetLimits::default());
    let d = device(&ca, "a.example", a.addr);
    let r = post(&d, "a.example", &notify(), b"x").await.unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text().contains("client certificate"), "{}", r.text());
    // The client API and the directory are open to devices, as Anonymous.
    let r = post(&d, "a.example", "/client/v1/queue", b"")
        .await
        .unwrap();
    assert_eq!(r.text(), "anonymous POST /client/v1/queue 0");
    let r = tokio::time::timeout(
        T,
        d.request(
            "a.example",
            Method::GET,
            paths::DIRECTORY_PATH,
            HeaderMap::new(),
            Bytes::new(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        a.echo.calls.load(Ordering::SeqCst),
        2,
        "nothing reached the application for the refused call"
    );
}

#[tokio::test]
async fn net_mtls_from_a_certificate_for_c_claiming_b_is_refused() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(&ca, "a.example", NetLimits::default());
    let liar = provider(&ca, "c.example", "b.example", "a.example", a.addr, &ca);
    let r = post(&liar, "a.example", &notify(), b"x").await.unwrap();
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("not valid for b.example"), "{}", r.text());
    assert_eq!(a.echo.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn net_mtls_unknown_ca_is_refused() {
    let ca = Ca::new("test federation").unwrap();
    let rogue = Ca::new("rogue").unwrap();
    let a = start(&ca, "a.example", NetLimits::default());
    // A certificate from another CA (the client trusts the real CA for the server).
    let issued = rogue.issue("b.example").unwrap();
    let chain = certs_from_pem(&issued.cert_pem, "c").unwrap();
    let key = key_from_pem(&issued.key_pem, "k").unwrap();
    let c = Connector::provider(
        "b.example",
        &chain,
        &key,
        &certs_from_pem(&ca.cert_pem, "ca").unwrap(),
        HashMap::from([("a.example".to_owned(), a.addr)]),
        NetLimits::default(),
    )
    .unwrap();
    // Wait for the refusal, not for the handshake (the client may see its handshake complete first).
    let r = post(&c, "a.example", &notify(), b"x").await;
    assert!(r.is_err(), "{:?}", r.map(|r| r.text()));
    assert_eq!(a.echo.calls.load(Ordering::SeqCst), 0);
    // And a server we do not trust is refused by the client.
    let rogue_server = start(&rogue, "a.example", NetLimits::default());
    let b = provider(
        &ca,
        "b.example",
        "b.example",
        "a.example",
        rogue_server.addr,
        &ca,
    );
    assert!(post(&b, "a.example", &notify(), b"x").await.is_err());
}

#[tokio::test]
async fn net_body_limit_refuses_oversized_and_keeps_serving() {
    let ca = Ca::new("test federation").unwrap();
    let limits = NetLimits {
        max_body: 1024,
        ..NetLimits::default()
    };
    let a = start(&ca, "a.example", limits);
    let b = provider(&ca, "b.example", "b.example", "a.example", a.addr, &ca);
    static BIG: [u8; 4096] = [7; 4096];
    let r = post(&b, "a.example", &notify(), &BIG).await.unwrap();
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.text().contains("1024"), "{}", r.text());
    assert_eq!(
        post(&b, "a.example", &notify(), b"small")
            .await
            .unwrap()
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn net_limits_timeout_and_handler_panic_are_answered() {
    let ca = Ca::new("test federation").unwrap();
    let limits = NetLimits {
        request_timeout: Duration::from_millis(200),
        ..NetLimits::default()
    };
    let a = start(&ca, "a.example", limits);
    let b = provider(&ca, "b.example", "b.example", "a.example", a.addr, &ca);
    let r = post(&b, "a.example", "/v1/notify/slow", b"").await.unwrap();
    assert_eq!(r.status, StatusCode::REQUEST_TIMEOUT);
    let r = post(&b, "a.example", "/v1/notify/panic", b"")
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        post(&b, "a.example", &notify(), b"").await.unwrap().status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn net_graceful_shutdown_lets_requests_in_flight_finish() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(&ca, "a.example", NetLimits::default());
    let b = Arc::new(provider(
        &ca,
        "b.example",
        "b.example",
        "a.example",
        a.addr,
        &ca,
    ));
    let b2 = b.clone();
    let slow = tokio::spawn(async move { post(&b2, "a.example", "/v1/notify/slow", b"").await });
    // Let the request reach the server before shutting down (bounded wait on a counter).
    for _ in 0..200 {
        if a.echo.calls.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    a.server.shutdown(Duration::from_secs(5)).await;
    let r = tokio::time::timeout(T, slow)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
}

#[test]
fn net_paths_route_the_drafts_endpoints() {
    let p = paths::path(Endpoint::Update, "mimi://a.example/r/club house");
    assert_eq!(p, "/v1/update/mimi%3A%2F%2Fa.example%2Fr%2Fclub%20house");
    assert_eq!(
        paths::route(&p),
        Some((Endpoint::Update, "mimi://a.example/r/club house".to_owned()))
    );
    assert_eq!(paths::route("/v1/nothing/x"), None);
    assert_eq!(paths::route("/v2/update/x"), None);
    assert_eq!(paths::route("/v1/update/"), None);
    let d = paths::directory("a.example:4433");
    assert_eq!(
        d.expand(Endpoint::Notify, "mimi://a.example/r/x"),
        "https://a.example:4433/v1/notify/mimi%3A%2F%2Fa.example%2Fr%2Fx"
    );
}

#[test]
fn net_pki_writes_keys_privately_and_refuses_bad_pem() {
    let ca = Ca::new("t").unwrap();
    let dir = std::env::temp_dir().join(format!("mimi-net-pki-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    mimi_net::pki::write_pem(&dir.join("ca.key"), &ca.key_pem, true).unwrap();
    mimi_net::pki::write_pem(&dir.join("ca.crt"), &ca.cert_pem, false).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(dir.join("ca.key"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    let again = Ca::load(&dir.join("ca.crt"), &dir.join("ca.key")).unwrap();
    assert!(again.issue("b.example").is_ok());
    assert!(certs_from_pem("garbage", "x").is_err());
    assert!(key_from_pem(&ca.cert_pem, "x").is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
