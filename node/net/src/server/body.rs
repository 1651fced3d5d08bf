//! Reading a request body under the size limit (`NET-body-limit`). h3 checks neither a size
//! limit nor `content-length` against the bytes it delivers (DESIGN.md): we count.

use super::Stream;
use super::auth::Refusal;
use crate::message::Response;
use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, StatusCode};

fn too_large(stream: &mut Stream, max: usize) -> Refusal {
    // Tell the peer to stop sending the rest; the answer still goes out on our half.
    stream.stop_sending(h3::error::Code::H3_REQUEST_REJECTED);
    Box::new(Response::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body may be at most {max} bytes"),
    ))
}

/// The declared length, if any (a malformed or repeated header is refused).
pub(crate) fn content_length(headers: &HeaderMap) -> Result<Option<usize>, Refusal> {
    let mut all = headers.get_all(http::header::CONTENT_LENGTH).iter();
    let Some(v) = all.next() else {
        return Ok(None);
    };
    let bad = || {
        Box::new(Response::error(
            StatusCode::BAD_REQUEST,
            "content-length is not one decimal number",
        ))
    };
    if all.next().is_some() {
        return Err(bad());
    }
    let s = v.to_str().map_err(|_| bad())?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // A number too large for usize is certainly over the limit.
    Ok(Some(s.parse::<usize>().unwrap_or(usize::MAX)))
}

/// Reads the whole body: at most `max` bytes, exactly `content-length` if declared.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    stream: &mut Stream,
    max: usize,
) -> Result<Bytes, Refusal> {
    let declared = content_length(headers)?;
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(stream, max));
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0));
    loop {
        match stream.recv_data().await {
            Ok(Some(mut chunk)) => {
                if chunk.remaining() > max - body.len() {
                    return Err(too_large(stream, max));
                }
                while chunk.has_remaining() {
                    let c = chunk.chunk();
                    let n = c.len();
                    body.extend_from_slice(c);
                    chunk.advance(n);
                }
                if declared.is_some_and(|n| body.len() > n) {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Err(Box::new(Response::error(
                    StatusCode::BAD_REQUEST,
                    format!("the request body could not be read: {e}"),
                )));
            }
        }
    }
    if let Some(n) = declared
        && n != body.len()
    {
        stream.stop_sending(h3::error::Code::H3_MESSAGE_ERROR);
        return Err(Box::new(Response::error(
            StatusCode::BAD_REQUEST,
            format!(
                "content-length says {n} bytes, the body has {}{}",
                body.len(),
                if body.len() > n { " or more" } else { "" }
            ),
        )));
    }
    Ok(body.freeze())
}
