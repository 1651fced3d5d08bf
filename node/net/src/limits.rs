//! Transport limits (`NET-limits`): each exceeded limit is a clear status.

use std::time::Duration;

/// Limits of a server or client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetLimits {
    /// Largest request or response body (413 when exceeded).
    pub max_body: usize,
    /// Concurrent requests per connection (QUIC stream limit).
    pub max_streams: u32,
    /// Time for one request: reading it, handling it (408 / 504).
    pub request_timeout: Duration,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for NetLimits {
    fn default() -> Self {
        Self {
            max_body: 1024 * 1024,
            max_streams: 256,
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl NetLimits {
    pub(crate) fn transport(&self) -> quinn::TransportConfig {
        let mut t = quinn::TransportConfig::default();
        t.max_concurrent_bidi_streams(self.max_streams.into());
        t.max_concurrent_uni_streams(16u32.into());
        if let Ok(idle) = quinn::IdleTimeout::try_from(self.idle_timeout) {
            t.max_idle_timeout(Some(idle));
        }
        t.keep_alive_interval(Some(self.idle_timeout / 3));
        t
    }
}
