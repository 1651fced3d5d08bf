//! Limits: body size, content-length, time, concurrent streams, handler failures.

use crate::common::*;
use http::StatusCode;
use mimi_net::NetLimits;
use mimi_net::client::CallError;
use mimi_net::pki::Ca;
use std::time::Duration;

#[tokio::test]
async fn net_body_limit_oversized_body_is_refused_and_the_server_keeps_serving() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(
        &ca,
        "a.example",
        NetLimits {
            max_body: 1024,
            ..NetLimits::default()
        },
    );
    let b = provider(&ca, "b.example", "a.example", a.addr);
    // Declared too large (content-length), and large enough to need flow control.
    for size in [1025, 200_000] {
        let r = post(&b, "a.example", &notify_path(), vec![7; size])
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{size}");
        assert!(r.text().contains("at most 1024 bytes"), "{}", r.text());
    }
    // Undeclared: counted while reading.
    let req = http::Request::post(format!("https://a.example{}", notify_path()))
        .header(http::header::FROM, "mimi@b.example")
        .body(())
        .unwrap();
    let (status, _) = raw(
        provider_tls(&ca, "b.example"),
        a.addr,
        "a.example",
        req,
        &[1; 5000],
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.echo.calls(), 0);
    // The limit itself is fine, and the same connection keeps serving.
    let r = post(&b, "a.example", &notify_path(), vec![7; 1024])
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(b.connections().await, 1);
}

#[tokio::test]
async fn net_body_limit_content_length_mismatch_is_refused() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(&ca, "a.example", NetLimits::default());
    for (declared, body) in [("10", &b"abc"[..]), ("2", &b"abc"[..]), ("x", &b"abc"[..])] {
        let req = http::Request::post(format!("https://a.example{}", notify_path()))
            .header(http::header::FROM, "mimi@b.example")
            .header(http::header::CONTENT_LENGTH, declared)
            .body(())
            .unwrap();
        let (status, text) = raw(
            provider_tls(&ca, "b.example"),
            a.addr,
            "a.example",
            req,
            body,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{declared}: {text}");
        assert!(text.contains("content-length"), "{text}");
    }
    assert_eq!(a.echo.calls(), 0);
}

#[tokio::test]
async fn net_request_timeout_a_slow_handler_is_answered_504_and_cancelled() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(
        &ca,
        "a.example",
        NetLimits {
            request_timeout: Duration::from_millis(300),
            ..NetLimits::default()
        },
    );
    let b = provider(&ca, "b.example", "a.example", a.addr);
    let r = post(&b, "a.example", "/v1/notify/sleep", vec![])
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(r.text().contains("300 ms"), "{}", r.text());
    let r = post(&b, "a.example", &notify_path(), vec![]).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn net_request_timeout_the_client_gives_up() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(&ca, "a.example", NetLimits::default());
    let limits = NetLimits {
        request_timeout: Duration::from_millis(300),
        ..NetLimits::default()
    };
    let b = provider_as(
        &ca,
        "b.example",
        "b.example",
        &ca,
        "a.example",
        a.addr,
        limits,
    );
    let e = post(&b, "a.example", "/v1/notify/sleep", vec![])
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::Timeout { ms: 300, .. }), "{e}");
}

#[tokio::test]
async fn net_always_answer_a_handler_panic_is_a_500() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(&ca, "a.example", NetLimits::default());
    let b = provider(&ca, "b.example", "a.example", a.addr);
    let r = post(&b, "a.example", "/v1/notify/panic", vec![])
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    let r = post(&b, "a.example", &notify_path(), vec![]).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn net_streams_limit_excess_concurrent_requests_get_503() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(
        &ca,
        "a.example",
        NetLimits {
            max_streams: 2,
            ..NetLimits::default()
        },
    );
    let b = std::sync::Arc::new(provider(&ca, "b.example", "a.example", a.addr));
    let held: Vec<_> = (0..2)
        .map(|_| {
            let b = b.clone();
            tokio::spawn(async move { post(&b, "a.example", "/v1/notify/hold", vec![]).await })
        })
        .collect();
    a.echo.wait_calls(2).await;
    // Both slots are taken: the third is refused at once, with Retry-After.
    let r = post(&b, "a.example", &notify_path(), vec![]).await.unwrap();
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert!(r.text().contains("at most 2"), "{}", r.text());
    assert_eq!(r.headers.get(http::header::RETRY_AFTER).unwrap(), "1");
    a.echo.release.add_permits(2);
    for h in held {
        assert_eq!(h.await.unwrap().unwrap().status, StatusCode::OK);
    }
    let r = post(&b, "a.example", &notify_path(), vec![]).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(b.connections().await, 1);
}

#[tokio::test]
async fn net_limits_oversized_headers_are_refused_with_431() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(
        &ca,
        "a.example",
        NetLimits {
            max_header_bytes: 1024,
            ..NetLimits::default()
        },
    );
    let req = http::Request::post(format!("https://a.example{}", notify_path()))
        .header(http::header::FROM, "mimi@b.example")
        .header("x-padding", "p".repeat(4000))
        .body(())
        .unwrap();
    let (status, _) = raw(
        provider_tls(&ca, "b.example"),
        a.addr,
        "a.example",
        req,
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(a.echo.calls(), 0);
    let b = provider(&ca, "b.example", "a.example", a.addr);
    assert_eq!(
        post(&b, "a.example", &notify_path(), vec![])
            .await
            .unwrap()
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn net_request_timeout_a_body_that_never_ends_is_answered_408() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(
        &ca,
        "a.example",
        NetLimits {
            request_timeout: Duration::from_millis(300),
            ..NetLimits::default()
        },
    );
    let req = http::Request::post(format!("https://a.example{}", notify_path()))
        .header(http::header::FROM, "mimi@b.example")
        .header(http::header::CONTENT_LENGTH, "10")
        .body(())
        .unwrap();
    let (status, text) = try_raw(
        provider_tls(&ca, "b.example"),
        a.addr,
        "a.example",
        req,
        b"abc",
        false,
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{text}");
    assert_eq!(a.echo.calls(), 0);
}
