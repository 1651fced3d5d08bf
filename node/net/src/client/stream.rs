//! Calls whose request or answer body travels in pieces (`NET-stream`): an upload from a
//! piece channel, a download read piece by piece. Every piece must move within the request
//! timeout; there is no overall deadline, so a large body is not cut off by its size.

use super::{CallError, Connector};
use crate::message::Response;
use crate::stream::{PIECE_BYTES, PieceSender, Pieces, pieces};
use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use std::time::Duration;

type Stream = h3::client::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

/// An answer whose body is read piece by piece.
pub struct Download {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    stream: Stream,
    peer: String,
    idle: Duration,
    max_whole: usize,
    length: Option<u64>,
    got: u64,
    done: bool,
}

impl Download {
    /// `content-length` of the answer, if the peer sent one.
    pub fn length(&self) -> Option<u64> {
        self.length
    }

    /// The next piece of the body; `None` at its end, where its length was checked against
    /// `content-length`. A reset stream is an error, never a short body.
    pub async fn next(&mut self) -> Result<Option<Bytes>, CallError> {
        if self.done {
            return Ok(None);
        }
        let fail = |reason: String| CallError::Request {
            peer: self.peer.clone(),
            reason,
        };
        let piece = tokio::time::timeout(self.idle, self.stream.recv_data())
            .await
            .map_err(|_| CallError::Timeout {
                peer: self.peer.clone(),
                ms: self.idle.as_millis(),
            })?
            .map_err(|e| fail(format!("the download broke off: {e}")))?;
        match piece {
            Some(mut b) => {
                let piece = b.copy_to_bytes(b.remaining());
                self.got += piece.len() as u64;
                if self.length.is_some_and(|n| self.got > n) {
                    return Err(fail("the answer is longer than its content-length".into()));
                }
                Ok(Some(piece))
            }
            None => {
                self.done = true;
                match self.length {
                    Some(n) if n != self.got => Err(fail(format!(
                        "the answer has {} bytes, its content-length says {n}",
                        self.got
                    ))),
                    _ => Ok(None),
                }
            }
        }
    }

    /// The whole answer (at most the client's body limit): for refusals and small answers.
    pub async fn whole(mut self) -> Result<Response, CallError> {
        let mut out = BytesMut::new();
        while let Some(p) = self.next().await? {
            if p.len() > self.max_whole.saturating_sub(out.len()) {
                return Err(CallError::TooLarge {
                    peer: self.peer.clone(),
                    max: self.max_whole,
                });
            }
            out.extend_from_slice(&p);
        }
        Ok(Response {
            status: self.status,
            headers: self.headers,
            body: out.freeze(),
        })
    }

    /// The body as a piece channel (for relaying it on): a task reads it and regroups it into
    /// pieces of [`PIECE_BYTES`]; a failure arrives as an `Err` piece.
    pub fn into_pieces(mut self) -> Pieces {
        let (tx, rx): (PieceSender, Pieces) = pieces();
        tokio::spawn(async move {
            let mut buf = BytesMut::new();
            loop {
                match self.next().await {
                    Ok(Some(p)) => {
                        buf.extend_from_slice(&p);
                        if buf.len() >= PIECE_BYTES
                            && tx.send(Ok(buf.split().freeze())).await.is_err()
                        {
                            self.stream
                                .stop_sending(h3::error::Code::H3_REQUEST_CANCELLED);
                            return;
                        }
                    }
                    Ok(None) => {
                        if !buf.is_empty() {
                            let _ = tx.send(Ok(buf.freeze())).await;
                        }
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string())).await;
                        return;
                    }
                }
            }
        });
        rx
    }
}

impl Connector {
    async fn open_stream(
        &self,
        domain: &str,
        method: Method,
        path: &str,
        mut headers: HeaderMap,
        length: u64,
    ) -> Result<(Stream, quinn::Connection), CallError> {
        let domain = domain.to_ascii_lowercase();
        let timeout = || CallError::Timeout {
            peer: domain.clone(),
            ms: self.limits.request_timeout.as_millis(),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let live = tokio::time::timeout(self.limits.request_timeout, self.live(&domain))
                .await
                .map_err(|_| timeout())??;
            let mut req = http::Request::builder()
                .method(method.clone())
                .uri(format!("https://{domain}{path}"));
            if let Some(from) = &self.from {
                let v = HeaderValue::from_str(&format!("mimi@{from}"))
                    .map_err(|e| CallError::Setup(format!("our domain: {e}")))?;
                headers.insert(http::header::FROM, v);
            }
            headers.insert(http::header::CONTENT_LENGTH, length.into());
            if let Some(h) = req.headers_mut() {
                h.extend(headers.clone());
            }
            let req = req.body(()).map_err(|e| CallError::Setup(e.to_string()))?;
            let mut sender = live.sender.clone();
            match tokio::time::timeout(self.limits.request_timeout, sender.send_request(req)).await
            {
                Ok(Ok(s)) => return Ok((s, live.conn)),
                Ok(Err(e)) => {
                    self.forget(&domain, &live.conn).await;
                    if attempt >= 2 {
                        return Err(CallError::Request {
                            peer: domain,
                            reason: e.to_string(),
                        });
                    }
                }
                Err(_) => return Err(timeout()),
            }
        }
    }

    async fn answer(&self, domain: &str, mut stream: Stream) -> Result<Download, CallError> {
        let idle = self.limits.request_timeout;
        let resp = tokio::time::timeout(idle, stream.recv_response())
            .await
            .map_err(|_| CallError::Timeout {
                peer: domain.to_owned(),
                ms: idle.as_millis(),
            })?
            .map_err(|e| CallError::Request {
                peer: domain.to_owned(),
                reason: e.to_string(),
            })?;
        let (parts, ()) = resp.into_parts();
        let length = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse::<u64>().ok());
        Ok(Download {
            status: parts.status,
            headers: parts.headers,
            stream,
            peer: domain.to_owned(),
            idle,
            max_whole: self.limits.max_body,
            length,
            got: 0,
            done: false,
        })
    }

    /// A request without a body whose answer is read piece by piece (`NET-stream`).
    pub async fn download(
        &self,
        domain: &str,
        method: Method,
        path: &str,
        headers: HeaderMap,
    ) -> Result<Download, CallError> {
        let (mut stream, _) = self.open_stream(domain, method, path, headers, 0).await?;
        // RFC 9114 §4.1.2: a server that needs no more of the request may stop our sending
        // half before our FIN went out (a handler that drops the empty body of a GET does);
        // that is no error by itself, the answer on the other half is what counts.
        let finished = stream.finish().await;
        match (self.answer(domain, stream).await, finished) {
            (Err(CallError::Request { peer, reason }), Err(f)) => Err(CallError::Request {
                peer,
                reason: format!("{reason} (while finishing the request: {f})"),
            }),
            (answer, _) => answer,
        }
    }

    /// A request whose body of `length` octets comes from `body`, piece by piece; the answer
    /// is read whole (`NET-stream`). A server that refuses early (413, 403) stops our
    /// sending: its answer is what is returned.
    pub async fn upload(
        &self,
        domain: &str,
        method: Method,
        path: &str,
        headers: HeaderMap,
        length: u64,
        mut body: Pieces,
    ) -> Result<Response, CallError> {
        let (mut stream, _) = self
            .open_stream(domain, method, path, headers, length)
            .await?;
        let idle = self.limits.request_timeout;
        let mut source_failed = None;
        let sent: Result<(), String> = async {
            while let Some(piece) = body.recv().await {
                let piece = match piece {
                    Ok(p) => p,
                    Err(e) => {
                        source_failed = Some(e);
                        return Ok(());
                    }
                };
                tokio::time::timeout(idle, stream.send_data(piece))
                    .await
                    .map_err(|_| "the peer took no data in time".to_owned())?
                    .map_err(|e| e.to_string())?;
            }
            stream.finish().await.map_err(|e| e.to_string())
        }
        .await;
        if let Some(why) = source_failed {
            // Our source failed: reset, so that the peer never takes a short body as whole.
            stream.stop_stream(h3::error::Code::H3_REQUEST_CANCELLED);
            return Err(CallError::Setup(format!("the upload stopped: {why}")));
        }
        match self.answer(domain, stream).await {
            Ok(d) => d.whole().await,
            Err(e) => match sent {
                Err(why) => Err(CallError::Request {
                    peer: domain.to_owned(),
                    reason: format!("{e} (while sending: {why})"),
                }),
                Ok(()) => Err(e),
            },
        }
    }
}
