use mimi_proto::backoff::{RetryPolicy, parse_retry_after};
use mimi_proto::clock::next_timestamp;
use std::time::Duration;

#[test]
fn delays_grow_are_jittered_within_half_to_full_and_capped() {
    let p = RetryPolicy {
        base: Duration::from_millis(100),
        max: Duration::from_secs(10),
        max_retry_after: Duration::from_secs(60),
    };
    for attempt in 0..80u32 {
        let d = 100u64.saturating_mul(1u64.checked_shl(attempt.min(63)).unwrap_or(u64::MAX));
        let d = d.min(10_000);
        let lo = p.delay(attempt, 0, None);
        let hi = p.delay(attempt, u64::MAX - (u64::MAX % (d - d / 2 + 1)) - 1, None);
        assert_eq!(lo, Duration::from_millis(d / 2), "attempt {attempt}");
        assert_eq!(hi, Duration::from_millis(d), "attempt {attempt}");
    }
}

#[test]
fn proto_5_5_retry_after_is_a_floor_with_a_cap() {
    let p = RetryPolicy::default();
    assert_eq!(
        p.delay(0, 0, Some(Duration::from_secs(30))),
        Duration::from_secs(30)
    );
    // A shorter Retry-After than our own backoff does not shorten it.
    assert_eq!(
        p.delay(20, 0, Some(Duration::from_millis(1))),
        Duration::from_secs(30)
    );
    // A hostile Retry-After is capped.
    assert_eq!(
        p.delay(0, 0, Some(Duration::from_secs(1 << 40))),
        p.max_retry_after
    );
}

#[test]
fn retry_after_forms() {
    let now = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT
    assert_eq!(parse_retry_after("120", now), Ok(Duration::from_secs(120)));
    assert_eq!(parse_retry_after(" 0 ", now), Ok(Duration::ZERO));
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", now),
        Ok(Duration::from_secs(120))
    );
    // In the past: now.
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
        Ok(Duration::ZERO)
    );
    assert_eq!(
        parse_retry_after("Thu, 29 Feb 2024 00:00:00 GMT", 0),
        Ok(Duration::from_secs(1_709_164_800))
    );
    for bad in [
        "",
        "-5",
        "1.5",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Fri, 29 Feb 2023 00:00:00 GMT",
        "Sun, 06 Nov 1994 24:49:37 GMT",
        "Sun, 06 Xyz 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT ",
    ] {
        assert!(parse_retry_after(bad, now).is_err(), "{bad:?}");
    }
    // Absurdly long delays saturate rather than fail; the policy caps them.
    assert!(parse_retry_after("99999999999999999999999", now).is_ok());
}

#[test]
fn proto_ts_monotonic_hub_timestamps_never_go_back() {
    assert_eq!(next_timestamp(None, 1000), 1000);
    assert_eq!(next_timestamp(Some(999), 1000), 1000);
    assert_eq!(next_timestamp(Some(1000), 1000), 1001);
    assert_eq!(next_timestamp(Some(5000), 1000), 5001);
    assert_eq!(next_timestamp(Some(u64::MAX), 0), u64::MAX);
}

proptest::proptest! {
    #[test]
    fn retry_after_never_panics(s in ".{0,40}") {
        let _ = parse_retry_after(&s, 1_700_000_000);
    }

    #[test]
    fn delay_is_bounded(attempt in 0u32..1000, r in proptest::num::u64::ANY) {
        let p = RetryPolicy::default();
        let d = p.delay(attempt, r, None);
        proptest::prop_assert!(d <= p.max && d >= p.base / 2);
    }
}
