//! Graceful shutdown.

use crate::common::*;
use http::StatusCode;
use mimi_net::NetLimits;
use mimi_net::client::CallError;
use mimi_net::pki::Ca;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn net_graceful_shutdown_lets_requests_in_flight_finish() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(&ca, "a.example", NetLimits::default());
    let echo = a.echo.clone();
    let b = Arc::new(provider(&ca, "b.example", "a.example", a.addr));
    let b2 = b.clone();
    let held = tokio::spawn(async move { post(&b2, "a.example", "/v1/notify/hold", vec![]).await });
    echo.wait_calls(1).await;
    let shutdown = tokio::spawn(a.server.shutdown(Duration::from_secs(10)));
    // Wait until the shutdown is visible: new requests are refused (GOAWAY on the pooled
    // connection, then CONNECTION_REFUSED for a new one) while the held one is in flight.
    let mut refused = None;
    for _ in 0..500 {
        match post(&b, "a.example", &notify_path(), vec![]).await {
            Ok(r) => assert_eq!(r.status, StatusCode::OK),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = refused.expect("the shutdown never refused new requests");
    assert!(
        matches!(
            refused,
            CallError::Connect { .. } | CallError::Request { .. }
        ),
        "{refused}"
    );
    assert!(!held.is_finished());
    echo.release.add_permits(1);
    let r = tokio::time::timeout(T, held)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    tokio::time::timeout(T, shutdown).await.unwrap().unwrap();
}

#[tokio::test]
async fn net_graceful_shutdown_cancels_what_outlives_the_grace_period() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(&ca, "a.example", NetLimits::default());
    let echo = a.echo.clone();
    let b = Arc::new(provider(&ca, "b.example", "a.example", a.addr));
    let b2 = b.clone();
    let held = tokio::spawn(async move { post(&b2, "a.example", "/v1/notify/hold", vec![]).await });
    echo.wait_calls(1).await;
    tokio::time::timeout(T, a.server.shutdown(Duration::from_millis(200)))
        .await
        .unwrap();
    // The client sees an error, not an empty success.
    let r = tokio::time::timeout(T, held).await.unwrap().unwrap();
    assert!(r.is_err(), "{:?}", r.map(|r| (r.status, r.text())));
}
