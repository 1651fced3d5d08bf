//! Bodies that travel in pieces (`NET-stream`): large uploads and downloads (attachments) go
//! through the node and the client without ever being in memory whole. A piece source is a
//! bounded channel, so a slow reader slows the writer down instead of filling memory.

use crate::message::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};

/// Pieces of a body, in order; an `Err` breaks the transfer (the peer sees a reset stream,
/// never a clean end of a truncated body).
pub type Pieces = tokio::sync::mpsc::Receiver<Result<Bytes, String>>;

/// The sending side of [`Pieces`].
pub type PieceSender = tokio::sync::mpsc::Sender<Result<Bytes, String>>;

/// How many pieces may wait in a channel (each piece is at most about 64 KiB).
pub const PIECES_IN_FLIGHT: usize = 8;

/// Relayed bodies are regrouped into pieces of about this size: QUIC hands a reader
/// packet-sized chunks, and relaying each as its own HTTP/3 DATA frame makes the next hop's
/// h3 frame buffer quadratic (found with a 200 MB download through two relays).
pub const PIECE_BYTES: usize = 64 * 1024;

/// A channel for pieces with the usual bound.
pub fn pieces() -> (PieceSender, Pieces) {
    tokio::sync::mpsc::channel(PIECES_IN_FLIGHT)
}

/// A response whose body is sent piece by piece.
#[derive(Debug)]
pub struct StreamedResponse {
    /// Status.
    pub status: StatusCode,
    /// Headers (`content-length` is set from `length`).
    pub headers: HeaderMap,
    /// The body's length, when known (the receiver checks it).
    pub length: Option<u64>,
    /// The body.
    pub body: Pieces,
}

/// What a streaming handler answers: a whole response (refusals, small answers) or a
/// streamed one.
#[derive(Debug)]
pub enum Reply {
    /// A response with its whole body.
    Whole(Response),
    /// A response sent in pieces.
    Stream(StreamedResponse),
}

impl From<Response> for Reply {
    fn from(r: Response) -> Self {
        Reply::Whole(r)
    }
}

impl Reply {
    /// The status.
    pub fn status(&self) -> StatusCode {
        match self {
            Reply::Whole(r) => r.status,
            Reply::Stream(s) => s.status,
        }
    }
}
