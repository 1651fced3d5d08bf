//! Who may call what: mutual TLS on provider paths, From, authority, the client API.

use crate::common::*;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use mimi_net::client::{CallError, ClientApi};
use mimi_net::paths::{self, Endpoint};
use mimi_net::pki::{Ca, certs_from_pem};
use mimi_net::{NetLimits, Peer};

#[tokio::test]
async fn net_mtls_from_round_trip_with_mutual_tls() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(&ca, "a.example", NetLimits::default());
    let b = provider(&ca, "b.example", "a.example", a.addr);
    let r = post(&b, "A.example", &notify_path(), b"fanout".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.text(),
        format!("provider b.example POST {} 6", notify_path())
    );
    assert_eq!(
        r.headers.get(http::header::CONTENT_LENGTH).unwrap(),
        &r.body.len().to_string()
    );
    assert!(Peer::Provider("b.example".into()).is_provider("B.EXAMPLE"));
    assert!(!Peer::Anonymous.is_provider("b.example"));
    a.server.shutdown(T).await;
}

#[tokio::test]
async fn net_mtls_required_no_client_certificate_on_provider_paths_is_refused() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(&ca, "a.example", NetLimits::default());
    let d = anonymous(&ca, "a.example", a.addr);
    // Every endpoint of the draft, an unknown path and a malformed one: refused with 401
    // (the answer is awaited, not just the handshake).
    let mut refused: Vec<String> = Endpoint::ALL
        .into_iter()
        .map(|e| paths::path(e, "mimi://a.example/r/x"))
        .collect();
    refused.extend(["/v1/notify/".into(), "/elsewhere".into(), "/".into()]);
    for p in &refused {
        let r = post(&d, "a.example", p, b"x".to_vec()).await.unwrap();
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{p}");
        assert!(r.text().contains("client certificate"), "{}", r.text());
    }
    assert_eq!(a.echo.calls(), 0, "nothing reached the application");
    // Refusals are observed (for metrics) with the status, and no caller.
    let observed = a.echo.observed.lock().unwrap().clone();
    assert_eq!(observed.len(), refused.len());
    assert!(observed.iter().all(|(p, s)| p.is_none() && *s == 401));
}

#[tokio::test]
async fn net_client_api_without_certificate_reaches_the_handler_as_anonymous() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(&ca, "a.example", NetLimits::default());
    let roots = certs_from_pem(&ca.cert_pem, "ca").unwrap();
    let api = ClientApi::new(
        "a.example",
        &a.addr.to_string(),
        &roots,
        NetLimits::default(),
    )
    .unwrap();
    let r = api
        .request(Method::POST, "devices", Bytes::from_static(b"reg"))
        .await
        .unwrap();
    assert_eq!(r.text(), "anonymous POST /client/v1/devices 3");
    assert_eq!(*a.echo.token.lock().unwrap(), None);
    api.set_token("t0ken");
    let r = api
        .request(Method::GET, "queue?after=5", Bytes::new())
        .await
        .unwrap();
    assert_eq!(r.text(), "anonymous GET /client/v1/queue?after=5 0");
    assert_eq!(a.echo.token.lock().unwrap().as_deref(), Some("t0ken"));
    // The directory is open too.
    let r = tokio::time::timeout(
        T,
        api.connector().request(
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
    assert_eq!(
        r.text(),
        format!("anonymous GET {} 0", paths::DIRECTORY_PATH)
    );
}

#[tokio::test]
async fn net_mtls_from_certificate_for_c_claiming_b_is_refused() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(&ca, "a.example", NetLimits::default());
    let liar = provider_as(
        &ca,
        "c.example",
        "b.example",
        &ca,
        "a.example",
        a.addr,
        NetLimits::default(),
    );
    let r = post(&liar, "a.example", &notify_path(), b"x".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("not valid for b.example"), "{}", r.text());
    assert_eq!(a.echo.calls(), 0);
}

#[tokio::test]
async fn net_mtls_from_missing_or_malformed_from_is_refused() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(&ca, "a.example", NetLimits::default());
    for from in [
        None,
        Some("b.example"),
        Some("mimi@"),
        Some("mimi@b.example, mimi@c.example"),
    ] {
        let mut req = http::Request::post(format!("https://a.example{}", notify_path()));
        if let Some(f) = from {
            req = req.header(http::header::FROM, f);
        }
        let (status, text) = raw(
            provider_tls(&ca, "b.example"),
            a.addr,
            "a.example",
            req.body(()).unwrap(),
            b"",
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{from:?}: {text}");
        assert!(text.contains("From"), "{text}");
    }
    assert_eq!(a.echo.calls(), 0);
}

#[tokio::test]
async fn net_mtls_unknown_ca_is_refused() {
    let ca = Ca::new("test federation").unwrap();
    let rogue = Ca::new("rogue").unwrap();
    let a = start(&ca, "a.example", NetLimits::default());
    // A client certificate from another CA (the client trusts the real CA for the server):
    // wait for the refusal, not for the handshake (TLS 1.3 clients may see theirs complete).
    let c = provider_as(
        &rogue,
        "b.example",
        "b.example",
        &ca,
        "a.example",
        a.addr,
        NetLimits::default(),
    );
    let e = post(&c, "a.example", &notify_path(), b"x".to_vec())
        .await
        .unwrap_err();
    assert!(
        matches!(e, CallError::Connect { .. } | CallError::Request { .. }),
        "{e}"
    );
    assert_eq!(a.echo.calls(), 0);
    // And a server certificate from an unknown CA is refused by the client.
    let rogue_server = start(&rogue, "a.example", NetLimits::default());
    let b = provider(&ca, "b.example", "a.example", rogue_server.addr);
    let e = post(&b, "a.example", &notify_path(), b"x".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::Connect { .. }), "{e}");
    assert_eq!(rogue_server.echo.calls(), 0);
}

#[tokio::test]
async fn net_authority_wrong_authority_is_refused() {
    let ca = Ca::new("test federation").unwrap();
    // Provider a.example's listener holding a certificate for z.example (a mix-up of
    // certificates on a shared address): TLS succeeds for z.example, the request names
    // z.example, and a.example refuses it.
    let a = start_with(
        "a.example",
        &material(&ca.issue("z.example").unwrap(), &ca),
        NetLimits::default(),
    );
    let b = provider(&ca, "b.example", "z.example", a.addr);
    let r = post(&b, "z.example", &notify_path(), b"x".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST, "{}", r.text());
    assert!(r.text().contains("a.example"), "{}", r.text());
    // The authority is checked on the client API too.
    let (status, _) = raw(
        provider_tls(&ca, "b.example"),
        a.addr,
        "z.example",
        http::Request::get("https://z.example/client/v1/queue")
            .body(())
            .unwrap(),
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
    assert_eq!(a.echo.calls(), 0);
}
