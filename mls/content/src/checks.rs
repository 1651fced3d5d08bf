//! Checks a receiver makes with context the bytes do not carry (content-08 §9.1): values that
//! "most likely represent malicious messages" and "should be logged and discarded".

use crate::model::MimiContent;

/// How far in the future a hub timestamp may be ("a few minutes").
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;
/// Earliest plausible timestamp: 2022-01-01T00:00:00Z, before the first concrete syntax of
/// the content draft (its own examples are dated February 2022).
pub const EARLIEST_TIMESTAMP_MS: u64 = 1_640_995_200_000;
/// One year, the bound on absolute expiry in the past and any expiry in the future.
pub const ONE_YEAR_MS: u64 = 365 * 24 * 60 * 60 * 1000;

/// What the receiver knows besides the bytes.
#[derive(Clone, Copy, Debug)]
pub struct ReceiveContext {
    /// The receiver's clock, ms since the UNIX epoch.
    pub now_ms: u64,
    /// The hub accepted timestamp of the message.
    pub hub_timestamp_ms: u64,
    /// When the room was created, if known.
    pub room_created_ms: Option<u64>,
}

/// A message that content-08 §9.1 says to log and discard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Suspicious {
    /// `CONTENT-9.1-future`
    #[error("timestamp {0} ms is more than a few minutes in the future")]
    TimestampInFuture(u64),
    /// `CONTENT-9.1-before-publication`
    #[error("timestamp {0} ms is before the content format existed")]
    TimestampBeforePublication(u64),
    /// `CONTENT-9.1-before-room`
    #[error("timestamp {0} ms is before the room was created")]
    TimestampBeforeRoom(u64),
    /// `CONTENT-9.1-expiry-past`
    #[error("absolute expiry is more than a year in the past")]
    ExpiryTooFarPast,
    /// `CONTENT-9.1-expiry-future`
    #[error("expiry is more than a year in the future")]
    ExpiryTooFarFuture,
}

/// Applies the §9.1 checks that need context (the structural ones are in the decoder).
pub fn check_received(content: &MimiContent, ctx: &ReceiveContext) -> Result<(), Suspicious> {
    let ts = ctx.hub_timestamp_ms;
    if ts > ctx.now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
        return Err(Suspicious::TimestampInFuture(ts));
    }
    if ts < EARLIEST_TIMESTAMP_MS {
        return Err(Suspicious::TimestampBeforePublication(ts));
    }
    if ctx.room_created_ms.is_some_and(|created| ts < created) {
        return Err(Suspicious::TimestampBeforeRoom(ts));
    }
    if let Some(exp) = content.expires {
        let ms = u64::from(exp.time) * 1000;
        if exp.relative {
            if ms > ONE_YEAR_MS {
                return Err(Suspicious::ExpiryTooFarFuture);
            }
        } else if ms.saturating_add(ONE_YEAR_MS) < ctx.now_ms {
            return Err(Suspicious::ExpiryTooFarPast);
        } else if ms > ctx.now_ms.saturating_add(ONE_YEAR_MS) {
            return Err(Suspicious::ExpiryTooFarFuture);
        }
    }
    Ok(())
}
