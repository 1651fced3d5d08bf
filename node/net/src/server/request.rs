//! One request stream: authenticate, read the body under the limits, run the application,
//! answer. Every path ends in an answer with a status (`NET-always-answer`).

use super::auth::{ConnAuth, authenticate};
use super::body::read_body;
use super::{Shared, Stream};
use crate::message::{Request, Response};
use http::StatusCode;
use std::net::SocketAddr;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

/// Cancels the application's task when the request is given up (time limit, shutdown).
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(crate) async fn serve(
    req: http::Request<()>,
    mut stream: Stream,
    shared: &Shared,
    auth: &ConnAuth,
    remote: SocketAddr,
    permit: Option<OwnedSemaphorePermit>,
) {
    let started = Instant::now();
    let deadline = started + shared.limits.request_timeout;
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    // NET-stream: the application reads this body (and may answer) piece by piece.
    if shared.handler.streams(&method, &path) {
        super::streamed::serve(req, stream, shared, auth, remote, permit, method, path).await;
        return;
    }
    let (response, peer) = answer(req, &mut stream, shared, auth, deadline, permit).await;
    shared.handler.observe(&super::Outcome {
        peer: peer.as_ref(),
        method: &method,
        path: &path,
        status: response.status,
        elapsed: started.elapsed(),
    });
    let status = response.status.as_u16();
    if response.status.is_client_error() || response.status.is_server_error() {
        // Refusals and failures are logged with their reason (never a body or a token).
        tracing::warn!(%remote, peer = ?peer, %method, %path, status, reason = %response.text(), "request refused");
    } else {
        tracing::debug!(%remote, peer = ?peer, %method, %path, status, ms = started.elapsed().as_millis() as u64, "request");
    }
    send(&mut stream, response).await;
}

async fn answer(
    req: http::Request<()>,
    stream: &mut Stream,
    shared: &Shared,
    auth: &ConnAuth,
    deadline: Instant,
    permit: Option<OwnedSemaphorePermit>,
) -> (Response, Option<crate::Peer>) {
    let Some(_permit) = permit else {
        // NET-streams-limit
        stream.stop_sending(h3::error::Code::H3_REQUEST_REJECTED);
        let r = Response::error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many concurrent requests on this connection (at most {})",
                shared.limits.max_streams
            ),
        );
        return (r.retry_after(1), None);
    };
    // NET-authority, NET-mtls-required, NET-mtls-from: before anything is read or handled.
    let peer = match authenticate(&shared.domain, req.uri(), req.headers(), auth) {
        Ok(p) => p,
        Err(refusal) => {
            stream.stop_sending(h3::error::Code::H3_REQUEST_REJECTED);
            return (*refusal, None);
        }
    };
    let limit = shared.limits.request_timeout;
    // NET-body-limit; NET-request-timeout (reading).
    let body = match tokio::time::timeout_at(
        deadline,
        read_body(req.headers(), stream, shared.limits.max_body),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(refusal)) => return (*refusal, Some(peer)),
        Err(_) => {
            // No stop_sending here: h3-quinn 0.0.10 panics in stop_sending after a cancelled
            // recv_data (the QUIC stream is still inside the dropped read future).
            let r = Response::error(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request was not received within {} ms",
                    limit.as_millis()
                ),
            );
            return (r, Some(peer));
        }
    };
    let (parts, ()) = req.into_parts();
    let request = Request {
        peer: peer.clone(),
        method: parts.method,
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
        headers: parts.headers,
        body,
    };
    // The application runs in its own task: a panic there becomes a 500
    // (`NET-always-answer`); past the deadline it is cancelled and answered 504
    // (`NET-request-timeout`).
    let handler = shared.handler.clone();
    let mut task = tokio::spawn(async move { handler.handle(request).await });
    let _abort = AbortOnDrop(task.abort_handle());
    let r = match tokio::time::timeout_at(deadline, &mut task).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the request handler failed");
            Response::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error while handling the request",
            )
        }
        Err(_) => Response::error(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the request was not handled within {} ms",
                limit.as_millis()
            ),
        ),
    };
    (r, Some(peer))
}

pub(crate) async fn send<S: h3::quic::SendStream<bytes::Bytes>>(
    stream: &mut h3::server::RequestStream<S, bytes::Bytes>,
    r: Response,
) {
    let mut builder = http::Response::builder().status(r.status);
    if let Some(h) = builder.headers_mut() {
        h.extend(r.headers);
        h.insert(http::header::CONTENT_LENGTH, r.body.len().into());
    }
    let resp = match builder.body(()) {
        Ok(resp) => resp,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the response");
            stream.stop_stream(h3::error::Code::H3_INTERNAL_ERROR);
            return;
        }
    };
    let sent = async {
        stream.send_response(resp).await?;
        if !r.body.is_empty() {
            stream.send_data(r.body).await?;
        }
        stream.finish().await
    };
    if let Err(e) = sent.await {
        tracing::debug!(error = %e, "the answer could not be sent");
    }
}
