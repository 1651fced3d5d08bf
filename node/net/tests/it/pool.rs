//! One long-lived connection per peer, reused; reconnect when it dies.

use crate::common::*;
use http::StatusCode;
use mimi_net::NetLimits;
use mimi_net::client::CallError;
use mimi_net::pki::Ca;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn net_pool_one_connection_for_many_requests() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(&ca, "a.example", NetLimits::default());
    let b = Arc::new(provider(&ca, "b.example", "a.example", a.addr));
    for _ in 0..20 {
        let r = post(&b, "a.example", &notify_path(), b"x".to_vec())
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::OK);
    }
    let concurrent: Vec<_> = (0..20)
        .map(|_| {
            let b = b.clone();
            tokio::spawn(async move { post(&b, "a.example", &notify_path(), vec![1; 100]).await })
        })
        .collect();
    for c in concurrent {
        assert_eq!(c.await.unwrap().unwrap().status, StatusCode::OK);
    }
    assert_eq!(b.connections().await, 1, "NET-pool: one connection reused");
    assert_eq!(a.echo.calls(), 40);
}

#[tokio::test]
async fn net_pool_reconnects_when_the_connection_dies() {
    let ca = Ca::new("test federation").unwrap();
    let a1 = start(&ca, "a.example", NetLimits::default());
    let b = provider(&ca, "b.example", "a.example", a1.addr);
    assert_eq!(
        post(&b, "a.example", &notify_path(), vec![])
            .await
            .unwrap()
            .status,
        StatusCode::OK
    );
    a1.server.shutdown(T).await;
    // The peer closed the connection; the pool notices (bounded wait).
    for _ in 0..500 {
        if b.connections().await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(b.connections().await, 0);
    // The provider comes back elsewhere: the next request connects anew.
    let a2 = start(&ca, "a.example", NetLimits::default());
    b.set_addr("a.example", a2.addr.to_string());
    assert_eq!(
        post(&b, "a.example", &notify_path(), vec![])
            .await
            .unwrap()
            .status,
        StatusCode::OK
    );
    assert_eq!(b.connections().await, 1);
    assert_eq!(a2.echo.calls(), 1);
}

#[tokio::test]
async fn net_pool_unknown_peer_and_bad_address_are_errors() {
    let ca = Ca::new("test federation").unwrap();
    let a = start(&ca, "a.example", NetLimits::default());
    let b = provider(&ca, "b.example", "a.example", a.addr);
    let e = post(&b, "c.example", &notify_path(), vec![])
        .await
        .unwrap_err();
    assert!(
        matches!(e, CallError::UnknownPeer(ref d) if d == "c.example"),
        "{e}"
    );
    b.set_addr("c.example", "not an address");
    let e = post(&b, "c.example", &notify_path(), vec![])
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::Resolve { .. }), "{e}");
    // A host name resolves.
    b.set_addr("a.example", format!("localhost:{}", a.addr.port()));
    let r = post(&b, "a.example", &notify_path(), vec![]).await;
    // localhost may resolve to ::1 first, where nothing listens: then a clean error.
    assert!(
        r.is_ok()
            || matches!(
                r,
                Err(CallError::Connect { .. } | CallError::Timeout { .. })
            )
    );
}
