//! Hub acceptance timestamps (protocol-06 §5.3–§5.5: milliseconds since the UNIX epoch).
//!
//! The hub's wall clock may step backwards (NTP); members sort by the hub's timestamp, so
//! within one room the hub hands out strictly increasing values (`PROTO-ts-monotonic`).

/// The timestamp to give the next accepted event of a room whose last event got `last`,
/// when the wall clock says `now_ms`: `now_ms`, or `last + 1` if the clock has not moved past it.
pub fn next_timestamp(last: Option<u64>, now_ms: u64) -> u64 {
    match last {
        Some(last) if now_ms <= last => last.saturating_add(1),
        _ => now_ms,
    }
}
