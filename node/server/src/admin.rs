//! The admin listener: plain HTTP/1.1 on a loopback port, for Prometheus and health checks.
//!
//! `GET /metrics` (text exposition format 0.0.4) and `GET /healthz`; anything else is 404 or
//! 405. Requests are read with a size limit and a deadline, one request per connection, so a
//! slow or hostile scraper cannot hold the node's resources.

use crate::metrics::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Longest request head we read.
const MAX_HEAD: usize = 8 * 1024;
/// Time allowed to send the request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// A running admin listener.
pub struct Admin {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Admin {
    /// Binds `addr` (port 0 picks a free port) and serves `metrics` until dropped or stopped.
    pub async fn start(addr: SocketAddr, metrics: Arc<Registry>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(stream, &metrics).await {
                        tracing::debug!(error = %e, "admin request failed");
                    }
                });
            }
        });
        Ok(Self { addr, task })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening.
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, metrics: &Registry) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let complete = tokio::time::timeout(HEAD_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
            head.extend_from_slice(buf.get(..n).unwrap_or_default());
            if head.windows(4).any(|w| w == b"\r\n\r\n") {
                return Ok(true);
            }
            if head.len() > MAX_HEAD {
                return Ok(false);
            }
        }
    })
    .await;
    let (status, content_type, body) = match complete {
        Err(_) => (
            408,
            "text/plain",
            "request head not received in time\n".to_owned(),
        ),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(false)) if head.len() > MAX_HEAD => (
            431,
            "text/plain",
            format!("request head over {MAX_HEAD} bytes\n"),
        ),
        Ok(Ok(false)) => (400, "text/plain", "incomplete request head\n".to_owned()),
        Ok(Ok(true)) => route(&head, metrics),
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Request Timeout",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    // Lingering close: read what the client still sends (bounded), so that closing with unread
    // input does not reset the connection before the client has read our answer.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut buf = [0u8; 4096];
        let mut drained = 0usize;
        while drained < 64 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
    Ok(())
}

fn route(head: &[u8], metrics: &Registry) -> (u16, &'static str, String) {
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return (400, "text/plain", "malformed request line\n".to_owned());
    };
    if !version.starts_with("HTTP/1.") {
        return (400, "text/plain", "HTTP/1.x only\n".to_owned());
    }
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET", "/metrics") => (200, "text/plain; version=0.0.4", metrics.render()),
        ("GET", "/healthz") => (200, "text/plain", "ok\n".to_owned()),
        (_, "/metrics" | "/healthz") => (405, "text/plain", "GET only\n".to_owned()),
        _ => (404, "text/plain", "try /metrics or /healthz\n".to_owned()),
    }
}
