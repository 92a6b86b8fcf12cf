//! Pacing: the 10 s floor, jitter, Retry-After, the timeout.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

use super::env::Lookup;

/// Polls are never closer together than this.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(10);
/// Test-only: milliseconds that replace the 10 s polling floor and the retry back-off unit, so the
/// end-to-end tests run in milliseconds. It can only lower them. Not documented for users and not
/// meant to be set in a real pipeline.
pub const TEST_MIN_INTERVAL_ENV: &str = "GATEHOUSE_CI_MIN_INTERVAL_MS";

/// Polls are spread by ±20 % so that many pipelines do not ask in step.
const JITTER: f64 = 0.2;
/// Attempts after the first for one call that failed in a way worth repeating.
pub(super) const MAX_RETRIES: u32 = 3;
const RETRY_UNIT: Duration = Duration::from_secs(2);
/// A single call gives up rather than wait longer than this on a `Retry-After`.
pub(super) const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// How fast to poll and retry: 10 s and 2 s, unless the test-only variable lowers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pacing {
    pub(super) floor: Duration,
    pub(super) retry_unit: Duration,
}

impl Pacing {
    pub(super) fn from_env(lookup: Lookup<'_>) -> Pacing {
        let test_ms = lookup(TEST_MIN_INTERVAL_ENV).and_then(|v| v.trim().parse::<u64>().ok());
        match test_ms {
            Some(ms) => {
                let unit = Duration::from_millis(ms);
                Pacing { floor: unit.min(MIN_POLL_INTERVAL), retry_unit: unit.min(RETRY_UNIT) }
            }
            None => Pacing { floor: MIN_POLL_INTERVAL, retry_unit: RETRY_UNIT },
        }
    }
}

/// The interval to poll at: the requested one, raised to the floor when below it (and `true` then,
/// so the caller says so once).
pub(super) fn effective_interval(requested: Duration, floor: Duration) -> (Duration, bool) {
    if requested < floor { (floor, true) } else { (requested, false) }
}

/// The pause before the next poll, or `None` when the next poll would fall after the timeout.
///
/// `jitter` is uniform in [0, 1): the interval is spread by ±20 %. The pause is never under the
/// floor and never under a `Retry-After`. When a full pause would overshoot the timeout, one last
/// poll happens at the timeout itself if that still keeps the floor and the `Retry-After`.
pub(super) fn next_poll_delay(
    interval: Duration,
    floor: Duration,
    jitter: f64,
    retry_after: Option<Duration>,
    elapsed: Duration,
    timeout: Duration,
) -> Option<Duration> {
    let spread = 1.0 + JITTER * (2.0 * jitter.clamp(0.0, 1.0) - 1.0);
    let minimum = floor.max(retry_after.unwrap_or_default());
    let delay = interval.mul_f64(spread).max(minimum);
    let remaining = timeout.saturating_sub(elapsed);
    if delay <= remaining {
        Some(delay)
    } else if remaining >= minimum && !remaining.is_zero() {
        Some(remaining)
    } else {
        None
    }
}

/// A uniform number in [0, 1), from the process's random hash keys and the clock.
pub(super) fn jitter() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    hasher.write_u128(nanos);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// `Retry-After` as delay-seconds or as an HTTP-date (RFC 9110 §10.2.3).
pub(super) fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX).min(86_400)));
    }
    static PARSER: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    let at = PARSER.parse_timestamp(value).ok()?;
    Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn an_interval_under_ten_seconds_is_raised_to_ten_and_said_so() {
        assert_eq!(effective_interval(S(0), MIN_POLL_INTERVAL), (S(10), true));
        assert_eq!(effective_interval(S(3), MIN_POLL_INTERVAL), (S(10), true));
        assert_eq!(effective_interval(S(9), MIN_POLL_INTERVAL), (S(10), true));
        assert_eq!(effective_interval(S(10), MIN_POLL_INTERVAL), (S(10), false));
        assert_eq!(effective_interval(S(30), MIN_POLL_INTERVAL), (S(30), false));
    }

    #[test]
    fn no_pause_between_polls_is_ever_under_ten_seconds_whatever_the_jitter() {
        let hour = S(3600);
        for interval in [0, 1, 5, 9, 10, 11, 12, 30] {
            let (interval, _) = effective_interval(S(interval), MIN_POLL_INTERVAL);
            for step in 0..=100 {
                let jitter = step as f64 / 100.0;
                let delay = next_poll_delay(interval, MIN_POLL_INTERVAL, jitter, None, S(0), hour).unwrap();
                assert!(delay >= S(10), "interval {interval:?} jitter {jitter}: {delay:?}");
            }
        }
        // Even a raw interval under the floor handed straight in does not get through.
        let delay = next_poll_delay(S(1), MIN_POLL_INTERVAL, 0.0, None, S(0), hour).unwrap();
        assert_eq!(delay, S(10));
    }

    #[test]
    fn jitter_spreads_the_interval_by_twenty_percent() {
        let hour = S(3600);
        assert_eq!(next_poll_delay(S(100), MIN_POLL_INTERVAL, 0.0, None, S(0), hour), Some(S(80)));
        assert_eq!(next_poll_delay(S(100), MIN_POLL_INTERVAL, 0.5, None, S(0), hour), Some(S(100)));
        let top = next_poll_delay(S(100), MIN_POLL_INTERVAL, 0.999_999, None, S(0), hour).unwrap();
        assert!(top > S(119) && top <= S(120), "{top:?}");
        let samples: Vec<f64> = (0..200).map(|_| jitter()).collect();
        assert!(samples.iter().all(|j| (0.0..1.0).contains(j)));
        assert!(samples.iter().any(|j| *j < 0.5) && samples.iter().any(|j| *j >= 0.5), "not spread: {samples:?}");
    }

    #[test]
    fn a_larger_retry_after_wins_and_a_smaller_one_does_not_shorten_the_pause() {
        let hour = S(3600);
        assert_eq!(next_poll_delay(S(30), MIN_POLL_INTERVAL, 0.5, Some(S(120)), S(0), hour), Some(S(120)));
        assert_eq!(next_poll_delay(S(30), MIN_POLL_INTERVAL, 0.5, Some(S(2)), S(0), hour), Some(S(30)));
        assert_eq!(next_poll_delay(S(10), MIN_POLL_INTERVAL, 0.0, Some(S(1)), S(0), hour), Some(S(10)));
    }

    #[test]
    fn polling_stops_at_the_timeout_with_one_last_poll_on_it_when_the_floor_allows() {
        // 25 s left, a 30 s pause would overshoot: poll once more at the timeout.
        assert_eq!(next_poll_delay(S(30), MIN_POLL_INTERVAL, 0.5, None, S(3575), S(3600)), Some(S(25)));
        // 5 s left: under the floor, so no more polls.
        assert_eq!(next_poll_delay(S(30), MIN_POLL_INTERVAL, 0.5, None, S(3595), S(3600)), None);
        // Past the timeout, or a zero timeout.
        assert_eq!(next_poll_delay(S(30), MIN_POLL_INTERVAL, 0.5, None, S(3601), S(3600)), None);
        assert_eq!(next_poll_delay(S(30), MIN_POLL_INTERVAL, 0.5, None, S(0), S(0)), None);
        // A Retry-After beyond the time left ends it too.
        assert_eq!(next_poll_delay(S(30), MIN_POLL_INTERVAL, 0.5, Some(S(600)), S(3300), S(3600)), None);
    }

    #[test]
    fn the_test_variable_only_ever_lowers_the_floor() {
        let none = |_: &str| None;
        assert_eq!(Pacing::from_env(&none), Pacing { floor: S(10), retry_unit: S(2) });
        let low = |name: &str| (name == TEST_MIN_INTERVAL_ENV).then(|| "25".to_string());
        assert_eq!(
            Pacing::from_env(&low),
            Pacing { floor: Duration::from_millis(25), retry_unit: Duration::from_millis(25) }
        );
        let high = |name: &str| (name == TEST_MIN_INTERVAL_ENV).then(|| "60000".to_string());
        assert_eq!(Pacing::from_env(&high), Pacing { floor: S(10), retry_unit: S(2) });
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now: jiff::Timestamp = "2026-12-01T18:00:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("120", now), Some(S(120)));
        assert_eq!(parse_retry_after(" 7 ", now), Some(S(7)));
        assert_eq!(parse_retry_after("Tue, 01 Dec 2026 18:01:30 GMT", now), Some(S(90)));
        assert_eq!(parse_retry_after("Tue, 01 Dec 2026 17:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
