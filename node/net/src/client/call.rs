//! One request on one stream of a pooled connection.

use super::{CallError, Sender};
use crate::message::Response;
use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method};

/// How a call failed.
pub(crate) enum Failure {
    /// The request never left: the stream could not be opened (the connection is dead or
    /// closing). Safe to retry on a new connection.
    NotSent(String),
    /// Anything else; not retried.
    Failed(CallError),
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn call(
    mut sender: Sender,
    domain: &str,
    from: Option<&str>,
    max_body: usize,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, Failure> {
    let fail = |reason: String| {
        Failure::Failed(CallError::Request {
            peer: domain.to_owned(),
            reason,
        })
    };
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("https://{domain}{path}"));
    if let Some(h) = req.headers_mut() {
        h.extend(headers.clone());
        // protocol-06 §4.1: the source provider in From.
        if let Some(from) = from {
            match HeaderValue::from_str(&format!("mimi@{from}")) {
                Ok(v) => {
                    h.insert(http::header::FROM, v);
                }
                Err(e) => return Err(fail(format!("our domain is not a header value: {e}"))),
            }
        }
        h.insert(http::header::CONTENT_LENGTH, body.len().into());
    }
    let req = req.body(()).map_err(|e| fail(e.to_string()))?;
    let mut stream = sender
        .send_request(req)
        .await
        .map_err(|e| Failure::NotSent(e.to_string()))?;
    // A server that refuses early (413, 401) may stop our sending half: its answer still
    // counts, so a failed send is not an error by itself.
    let sent = async {
        if !body.is_empty() {
            stream.send_data(body).await?;
        }
        stream.finish().await
    }
    .await;
    let resp = match stream.recv_response().await {
        Ok(r) => r,
        // RFC 9114 §4.1.1: a request rejected with H3_REQUEST_REJECTED (after a GOAWAY) was
        // not processed and may be retried.
        Err(h3::error::StreamError::RemoteTerminate {
            code: h3::error::Code::H3_REQUEST_REJECTED,
            ..
        }) => {
            return Err(Failure::NotSent(
                "the request was rejected unprocessed".into(),
            ));
        }
        Err(e) => {
            let why = match sent {
                Err(f) => format!("{e} (while sending: {f})"),
                Ok(()) => e.to_string(),
            };
            return Err(fail(why));
        }
    };
    let mut out = BytesMut::new();
    while let Some(mut chunk) = stream.recv_data().await.map_err(|e| fail(e.to_string()))? {
        if chunk.remaining() > max_body.saturating_sub(out.len()) {
            stream.stop_sending(h3::error::Code::H3_REQUEST_CANCELLED);
            return Err(Failure::Failed(CallError::TooLarge {
                peer: domain.to_owned(),
                max: max_body,
            }));
        }
        while chunk.has_remaining() {
            let c = chunk.chunk();
            let n = c.len();
            out.extend_from_slice(c);
            chunk.advance(n);
        }
    }
    let (parts, ()) = resp.into_parts();
    Ok(Response {
        status: parts.status,
        headers: parts.headers,
        body: out.freeze(),
    })
}
