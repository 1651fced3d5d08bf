//! Transport limits (`NET-limits`): each exceeded limit is a clear status or error.

use std::time::Duration;

/// Limits of a server or client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetLimits {
    /// Largest request body a server reads, largest response body a client reads
    /// (`NET-body-limit`: 413 on the server, [`crate::client::CallError::TooLarge`] on the client).
    pub max_body: usize,
    /// Largest header section (QPACK-decoded size, RFC 9114 §4.2.2); h3 answers 431 above it.
    pub max_header_bytes: u64,
    /// Requests handled at once per connection (`NET-streams-limit`). The QUIC stream limit
    /// advertised to the peer is twice this, so that a peer that opens more gets a 503 with
    /// `Retry-After` instead of silently waiting.
    pub max_streams: u32,
    /// Time for one request (`NET-request-timeout`). Server: reading the body (408) and
    /// running the handler (504) together. Client: connecting, sending and reading the answer.
    pub request_timeout: Duration,
    /// A connection with no traffic for this long is closed (keep-alive every third of it).
    pub idle_timeout: Duration,
}

impl Default for NetLimits {
    fn default() -> Self {
        Self {
            max_body: 1024 * 1024,
            max_header_bytes: 16 * 1024,
            max_streams: 256,
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl NetLimits {
    /// The QUIC stream limit advertised to peers.
    pub(crate) fn quic_streams(&self) -> u32 {
        self.max_streams.saturating_mul(2).max(1)
    }

    pub(crate) fn transport(&self) -> quinn::TransportConfig {
        let mut t = quinn::TransportConfig::default();
        t.max_concurrent_bidi_streams(self.quic_streams().into());
        // HTTP/3 needs control and QPACK streams from each side.
        t.max_concurrent_uni_streams(16u32.into());
        if let Ok(idle) = quinn::IdleTimeout::try_from(self.idle_timeout) {
            t.max_idle_timeout(Some(idle));
        }
        t.keep_alive_interval(Some(self.idle_timeout / 3));
        t
    }
}
