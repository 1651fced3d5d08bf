//! Requests whose body the application reads piece by piece and whose answer may be sent piece
//! by piece (`NET-stream`). The request is authenticated like every other; then, instead of a
//! whole-body limit and one deadline, every piece must arrive (and be taken by the peer) within
//! the request timeout, and the application decides how much it accepts.

use super::auth::{ConnAuth, authenticate};
use super::{Shared, Stream};
use crate::message::{Request, Response};
use crate::stream::Reply;
use bytes::{Buf, Bytes};
use http::StatusCode;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

type RecvHalf = h3::server::RequestStream<h3_quinn::RecvStream, Bytes>;
type SendHalf = h3::server::RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;

/// Why a request body could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// No piece arrived within the request timeout.
    #[error("no part of the body arrived within {0} ms")]
    Timeout(u128),
    /// The stream broke.
    #[error("the request body could not be read: {0}")]
    Broken(String),
    /// The body is longer or shorter than `content-length`.
    #[error("content-length says {declared} bytes, the body has {got}")]
    Length {
        /// `content-length`.
        declared: u64,
        /// What arrived.
        got: u64,
    },
}

impl BodyError {
    /// The answer for this failure (408 or 400, with the reason).
    pub fn response(&self) -> Response {
        let status = match self {
            BodyError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        };
        Response::error(status, self.to_string())
    }
}

/// The body of a streamed request, read piece by piece.
pub struct BodyStream {
    recv: RecvHalf,
    declared: Option<u64>,
    got: u64,
    idle: Duration,
    done: bool,
}

impl BodyStream {
    /// `content-length`, when the client sent one (a malformed one was refused already).
    pub fn declared(&self) -> Option<u64> {
        self.declared
    }

    /// Octets read so far.
    pub fn received(&self) -> u64 {
        self.got
    }

    /// The next piece; `None` at the end (where the length was checked against
    /// `content-length`).
    pub async fn next(&mut self) -> Result<Option<Bytes>, BodyError> {
        if self.done {
            return Ok(None);
        }
        let piece = match tokio::time::timeout(self.idle, self.recv.recv_data()).await {
            Ok(p) => p,
            Err(_) => {
                // No stop_sending after a cancelled recv_data (h3-quinn 0.0.10 panics there).
                self.done = true;
                return Err(BodyError::Timeout(self.idle.as_millis()));
            }
        };
        let piece = piece.map_err(|e| {
            self.done = true;
            BodyError::Broken(e.to_string())
        })?;
        match piece {
            Some(mut b) => {
                let piece = b.copy_to_bytes(b.remaining());
                self.got += piece.len() as u64;
                if let Some(n) = self.declared
                    && self.got > n
                {
                    self.refuse();
                    return Err(BodyError::Length {
                        declared: n,
                        got: self.got,
                    });
                }
                Ok(Some(piece))
            }
            None => {
                self.done = true;
                match self.declared {
                    Some(n) if n != self.got => Err(BodyError::Length {
                        declared: n,
                        got: self.got,
                    }),
                    _ => Ok(None),
                }
            }
        }
    }

    /// Tells the client to stop sending (the answer, a refusal, still goes out).
    pub fn refuse(&mut self) {
        if !self.done {
            self.done = true;
            self.recv.stop_sending(h3::error::Code::H3_REQUEST_REJECTED);
        }
    }
}

/// Serves one streamed request (the handler said [`super::Handler::streams`]).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve(
    req: http::Request<()>,
    mut stream: Stream,
    shared: &Shared,
    auth: &ConnAuth,
    remote: SocketAddr,
    permit: Option<OwnedSemaphorePermit>,
    method: http::Method,
    path: String,
) {
    let started = Instant::now();
    let observe = |status: StatusCode, peer: Option<&crate::Peer>| {
        shared.handler.observe(&super::Outcome {
            peer,
            method: &method,
            path: &path,
            status,
            elapsed: started.elapsed(),
        });
    };
    let refuse = |stream: &mut Stream, r: Response| {
        stream.stop_sending(h3::error::Code::H3_REQUEST_REJECTED);
        r
    };
    let Some(_permit) = permit else {
        let r = refuse(
            &mut stream,
            Response::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many concurrent requests on this connection",
            )
            .retry_after(1),
        );
        observe(r.status, None);
        super::request::send(&mut stream, r).await;
        return;
    };
    let peer = match authenticate(&shared.domain, req.uri(), req.headers(), auth) {
        Ok(p) => p,
        Err(refusal) => {
            let r = refuse(&mut stream, *refusal);
            observe(r.status, None);
            super::request::send(&mut stream, r).await;
            return;
        }
    };
    let declared = match super::body::content_length(req.headers()) {
        Ok(n) => n.map(|n| n as u64),
        Err(refusal) => {
            let r = refuse(&mut stream, *refusal);
            observe(r.status, Some(&peer));
            super::request::send(&mut stream, r).await;
            return;
        }
    };
    let (parts, ()) = req.into_parts();
    let request = Request {
        peer: peer.clone(),
        method: parts.method,
        path: path.clone(),
        headers: parts.headers,
        body: Bytes::new(),
    };
    let (mut send_half, recv) = stream.split();
    let idle = shared.limits.request_timeout;
    let body = BodyStream {
        recv,
        declared,
        got: 0,
        idle,
        done: false,
    };
    let handler = shared.handler.clone();
    let mut task = tokio::spawn(async move { handler.handle_stream(request, body).await });
    let _abort = super::request::AbortOnDrop(task.abort_handle());
    let reply = match (&mut task).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "the streaming request handler failed");
            Reply::Whole(Response::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error while handling the request",
            ))
        }
    };
    observe(reply.status(), Some(&peer));
    match reply {
        Reply::Whole(r) => {
            if r.status.is_client_error() || r.status.is_server_error() {
                tracing::warn!(%remote, ?peer, %method, %path, status = r.status.as_u16(), reason = %r.text(), "request refused");
            }
            super::request::send(&mut send_half, r).await;
        }
        Reply::Stream(s) => send_pieces(&mut send_half, s, idle).await,
    }
}

/// Sends a streamed answer; a broken source or a length mismatch resets the stream, so the
/// receiver never mistakes a truncated body for a whole one.
async fn send_pieces(stream: &mut SendHalf, s: crate::stream::StreamedResponse, idle: Duration) {
    let mut builder = http::Response::builder().status(s.status);
    if let Some(h) = builder.headers_mut() {
        h.extend(s.headers);
        if let Some(n) = s.length {
            h.insert(http::header::CONTENT_LENGTH, n.into());
        }
    }
    let Ok(resp) = builder.body(()) else {
        stream.stop_stream(h3::error::Code::H3_INTERNAL_ERROR);
        return;
    };
    let mut body = s.body;
    let result: Result<(), String> = async {
        tokio::time::timeout(idle, stream.send_response(resp))
            .await
            .map_err(|_| "the peer took no answer".to_owned())?
            .map_err(|e| e.to_string())?;
        let mut sent = 0u64;
        while let Some(piece) = body.recv().await {
            let piece = piece?;
            sent += piece.len() as u64;
            if s.length.is_some_and(|n| sent > n) {
                return Err("the body is longer than announced".into());
            }
            tokio::time::timeout(idle, stream.send_data(piece))
                .await
                .map_err(|_| "the peer took no data in time".to_owned())?
                .map_err(|e| e.to_string())?;
        }
        if let Some(n) = s.length
            && n != sent
        {
            return Err(format!("the body has {sent} bytes, {n} were announced"));
        }
        stream.finish().await.map_err(|e| e.to_string())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "a streamed answer was broken off");
        stream.stop_stream(h3::error::Code::H3_INTERNAL_ERROR);
    }
}
