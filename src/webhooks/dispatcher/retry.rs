//! Retry: where a delivery goes after an attempt, the schedule's jitter and `Retry-After`.
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use rand::Rng;

use super::send::Outcome;
use crate::domain::webhooks::DeliveryStatus;
use entity::webhook_deliveries as deliveries;

/// Bounds of an honoured `Retry-After`.
const RETRY_AFTER_MIN: i64 = 1;
const RETRY_AFTER_MAX: i64 = 3600;

/// Where a delivery goes after an attempt.
pub(super) struct Step {
    pub(super) status: DeliveryStatus,
    pub(super) attempts: i32,
    pub(super) next: Option<DateTime<Utc>>,
}

impl Step {
    /// Success ends the delivery; 410 or the last step of the schedule fails it; anything
    /// else retries after `Retry-After` (429/503, clamped) or the next step of the schedule.
    pub(super) fn after(
        d: &deliveries::Model,
        out: &Outcome,
        at: DateTime<Utc>,
        schedule: &[StdDuration],
    ) -> Step {
        // A manual redelivery does not count against (or restart) the schedule.
        let attempts = if d.manual { d.attempts } else { d.attempts + 1 };
        let (status, next) = if out.success() {
            (DeliveryStatus::Succeeded, None)
        } else if out.gone() || attempts as usize >= schedule.len() {
            (DeliveryStatus::Failed, None)
        } else {
            let delay = match out.retry_after {
                Some(s) => Duration::seconds(s.clamp(RETRY_AFTER_MIN, RETRY_AFTER_MAX)),
                None => jitter(schedule[attempts as usize]),
            };
            (DeliveryStatus::Pending, Some(at + delay))
        };
        Step {
            status,
            attempts,
            next,
        }
    }
}

/// A schedule step with ±20% jitter, so retries of many deliveries do not arrive in step.
pub(super) fn jitter(step: StdDuration) -> Duration {
    let ms = step.as_millis() as f64;
    if ms == 0.0 {
        return Duration::zero();
    }
    let factor = rand::rng().random_range(0.8..=1.2);
    Duration::milliseconds((ms * factor) as i64)
}

/// A `Retry-After` value in seconds from `now`: either delay-seconds or an HTTP-date
/// (RFC 9110 §10.2.3). A date in the past means "now".
pub(super) fn retry_after_seconds(value: &str, now: DateTime<Utc>) -> Option<i64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<i64>() {
        return Some(secs);
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&Utc) - now).num_seconds().max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now: DateTime<Utc> = "2026-11-26T12:00:00Z".parse().unwrap();
        assert_eq!(retry_after_seconds("120", now), Some(120));
        assert_eq!(retry_after_seconds(" 5 ", now), Some(5));
        assert_eq!(
            retry_after_seconds("Thu, 26 Nov 2026 12:01:30 GMT", now),
            Some(90)
        );
        assert_eq!(
            retry_after_seconds("Thu, 26 Nov 2026 11:00:00 GMT", now),
            Some(0)
        );
        assert_eq!(retry_after_seconds("soon", now), None);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..200 {
            let j = jitter(StdDuration::from_secs(100)).num_milliseconds();
            assert!((80_000..=120_000).contains(&j), "{j}");
        }
        assert_eq!(jitter(StdDuration::ZERO), Duration::zero());
    }
}
