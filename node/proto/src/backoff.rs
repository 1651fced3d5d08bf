//! Retry schedule of the hub's outbox (protocol-06 §5.5: the hub retries a notify that did not
//! get 201 and honours `Retry-After`; the draft sets no schedule, so this is ours, see
//! `spec-notes/decisions.md`).
//!
//! Exponential backoff with "equal jitter": attempt `n` waits a random time in `[d/2, d]` where
//! `d = min(max, base * 2^n)`, so that followers coming back after an outage are not hit by
//! every hub at the same instant, and the wait never collapses to zero. A `Retry-After` from
//! the follower is a floor (`PROTO-5.5-retry-after`), capped so that a hostile peer cannot park
//! our outbox for days.

use std::time::Duration;

/// When to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait before the second attempt (before jitter).
    pub base: Duration,
    /// Longest wait between attempts (before `Retry-After`).
    pub max: Duration,
    /// Longest wait a peer's `Retry-After` can ask for.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(200),
            max: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (0 = the first attempt failed).
    /// `random` is any uniformly random number (the caller's RNG, so tests are deterministic);
    /// `retry_after` is what the peer asked for, if it did.
    pub fn delay(&self, attempt: u32, random: u64, retry_after: Option<Duration>) -> Duration {
        let base_ms = u64::try_from(self.base.as_millis()).unwrap_or(u64::MAX);
        let max_ms = u64::try_from(self.max.as_millis()).unwrap_or(u64::MAX);
        let factor = 1u64.checked_shl(attempt.min(63)).unwrap_or(u64::MAX);
        let d = base_ms.saturating_mul(factor).min(max_ms);
        let half = d / 2;
        let jittered = half + random % (d - half + 1);
        let wait = Duration::from_millis(jittered);
        match retry_after {
            Some(asked) => wait.max(asked.min(self.max_retry_after)),
            None => wait,
        }
    }
}

/// A `Retry-After` value we cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Retry-After {value:?} is neither delay-seconds nor an IMF-fixdate (RFC 9110 §10.2.3)")]
pub struct RetryAfterError {
    /// The header value.
    pub value: String,
}

/// Reads a `Retry-After` header (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date in the
/// IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`), relative to `now_unix_s`. A date in the
/// past means "now". The obsolete RFC 850 and asctime forms are refused (RFC 9110 only asks
/// recipients to accept them; HTTP/3 senders must not produce them).
pub fn parse_retry_after(value: &str, now_unix_s: u64) -> Result<Duration, RetryAfterError> {
    let v = value.trim();
    let bad = || RetryAfterError {
        value: value.to_owned(),
    };
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Saturate absurd values instead of refusing them; the policy caps them anyway.
        return Ok(Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = parse_imf_fixdate(v).ok_or_else(bad)?;
    Ok(Duration::from_secs(at.saturating_sub(now_unix_s)))
}

/// `IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT` → UNIX seconds.
fn parse_imf_fixdate(s: &str) -> Option<u64> {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = s.as_bytes();
    if b.len() != 29 || s.get(3..5)? != ", " || s.get(25..)? != " GMT" {
        return None;
    }
    if !DAYS.contains(&s.get(0..3)?) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    let day = num(5..7)?;
    let month = MONTHS.iter().position(|m| Some(*m) == s.get(8..11))? as u64 + 1;
    let year = num(12..16)?;
    if b.get(7) != Some(&b' ') || b.get(11) != Some(&b' ') || b.get(16) != Some(&b' ') {
        return None;
    }
    if s.get(19..20)? != ":" || s.get(22..23)? != ":" {
        return None;
    }
    let (hour, min, sec) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 || year < 1970 {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    Some(days * 86_400 + hour * 3600 + min * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm), `None`
/// for a day that does not exist in its month.
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let month_len = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day > month_len {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}
