//! Reading a node's admin listener: `GET /metrics` over plain HTTP/1.1 on loopback, bounded
//! in time and size.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The body of `GET path` at `admin`, or `None` when the node does not answer within a
/// second (down, stopped) or answers something other than 200.
pub async fn get(admin: SocketAddr, path: &str) -> Option<String> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(admin).await.ok()?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .ok()?;
        let mut buf = Vec::new();
        (&mut s).take(8 << 20).read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            return None;
        }
        Some(body.to_owned())
    };
    tokio::time::timeout(Duration::from_secs(1), fut)
        .await
        .ok()
        .flatten()
}

/// The sum of a metric's samples (every label set) in a text exposition.
pub fn sum(text: &str, metric: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Messages waiting in the node's outbox (`mimi_outbox_depth`, over every follower), or
/// `None` when the node does not answer.
pub async fn outbox_depth(admin: SocketAddr) -> Option<f64> {
    get(admin, "/metrics")
        .await
        .map(|t| sum(&t, "mimi_outbox_depth"))
}
