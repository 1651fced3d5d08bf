use mimi_node::admin::Admin;
use mimi_node::metrics::Registry;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn get(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    s.shutdown().await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

#[tokio::test]
async fn serves_metrics_and_health_and_refuses_the_rest() {
    let registry = Arc::new(Registry::new());
    let rooms = registry.gauge("mimi_rooms", "Rooms hosted.", &[]).unwrap();
    rooms.set(&[], 3).unwrap();
    let admin = Admin::start("127.0.0.1:0".parse().unwrap(), registry.clone())
        .await
        .unwrap();
    let addr = admin.local_addr();

    let r = get(addr, b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.contains("content-type: text/plain; version=0.0.4"), "{r}");
    assert!(r.ends_with("mimi_rooms 3\n"), "{r}");

    let r = get(addr, b"GET /healthz HTTP/1.0\r\n\r\n").await;
    assert!(
        r.starts_with("HTTP/1.1 200 OK") && r.ends_with("ok\n"),
        "{r}"
    );
    let r = get(addr, b"POST /metrics HTTP/1.1\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 405"), "{r}");
    let r = get(addr, b"GET /secret HTTP/1.1\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    let r = get(addr, b"garbage\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    // An endless head is cut off at the limit.
    let mut big = b"GET /metrics HTTP/1.1\r\nx: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 20_000));
    let r = get(addr, &big).await;
    assert!(r.starts_with("HTTP/1.1 431"), "{r}");
    // Still serving.
    let r = get(addr, b"GET /healthz HTTP/1.1\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    admin.stop();
}
