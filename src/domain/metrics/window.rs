//! The window `[from, to)` of a growth question and its series buckets.
//!
//! Buckets are cut at UTC interval boundaries (midnight; Monday midnight; the first of the
//! month), the first and last clipped to the window. Every boundary is a UTC midnight, so a
//! UTC day lies in exactly one bucket: the queries group facts by day and the buckets are
//! sums of days.
use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeZone, Utc};

use crate::domain::{DomainError, DomainResult};

/// Most buckets a series may have.
pub const MAX_BUCKETS: usize = 400;

/// The length of a series bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interval {
    /// UTC days.
    Day,
    /// UTC weeks starting on Monday.
    Week,
    /// Calendar months in UTC.
    Month,
}

impl Interval {
    /// The API spelling: DAY, WEEK, MONTH.
    pub fn name(self) -> &'static str {
        match self {
            Interval::Day => "DAY",
            Interval::Week => "WEEK",
            Interval::Month => "MONTH",
        }
    }

    /// The interval boundary at or before `day`.
    fn floor(self, day: NaiveDate) -> NaiveDate {
        match self {
            Interval::Day => day,
            Interval::Week => day - Days::new(day.weekday().num_days_from_monday().into()),
            Interval::Month => day.with_day(1).expect("day 1 exists"),
        }
    }

    /// The boundary after the one at `start`.
    fn next(self, start: NaiveDate) -> NaiveDate {
        match self {
            Interval::Day => start + Days::new(1),
            Interval::Week => start + Days::new(7),
            Interval::Month => start + Months::new(1),
        }
    }
}

/// A validated window with the starts of its buckets.
#[derive(Clone, Debug)]
pub struct Window {
    /// Inclusive start.
    pub from: DateTime<Utc>,
    /// Exclusive end.
    pub to: DateTime<Utc>,
    /// Bucket length.
    pub interval: Interval,
    /// Start of each bucket, oldest first; the first is `from`.
    starts: Vec<DateTime<Utc>>,
}

/// The earliest and latest dates a window may touch.
const EARLIEST: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
const LATEST: NaiveDate = NaiveDate::from_ymd_opt(9999, 1, 1).expect("a date");

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

impl Window {
    /// Checks `from < to` and the bucket bound, and cuts the buckets.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>, interval: Interval) -> DomainResult<Self> {
        if to <= from {
            return Err(DomainError::invalid(
                &["to"],
                "`to` must be later than `from` (the window is [from, to)).",
            ));
        }
        // Beyond these, day arithmetic (and four-digit years in the stored day keys) would
        // overflow; no fact lies outside them.
        let (min, max) = (midnight(EARLIEST), midnight(LATEST));
        if from < min || to > max {
            return Err(DomainError::invalid(
                &[if from < min { "from" } else { "to" }],
                "`from` and `to` must lie between 1970-01-01 and 9999-01-01 (UTC).",
            ));
        }
        let mut starts = vec![from];
        let mut next = interval.next(interval.floor(from.date_naive()));
        while midnight(next) < to {
            if starts.len() == MAX_BUCKETS {
                return Err(DomainError::invalid(
                    &["interval"],
                    format!(
                        "A growth series has at most {MAX_BUCKETS} buckets; this window needs \
                         more than {MAX_BUCKETS} {} buckets. Use a longer interval or a shorter \
                         window.",
                        interval.name()
                    ),
                ));
            }
            starts.push(midnight(next));
            next = interval.next(next);
        }
        Ok(Window {
            from,
            to,
            interval,
            starts,
        })
    }

    /// The (clipped) start of each bucket.
    pub fn starts(&self) -> &[DateTime<Utc>] {
        &self.starts
    }

    /// The bucket a UTC day of the window falls in.
    pub fn bucket_of(&self, day: NaiveDate) -> usize {
        let t = midnight(day);
        self.starts.partition_point(|s| *s <= t).saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn weeks_start_on_monday_and_edges_are_clipped() {
        // 2026-11-04 is a Wednesday.
        let w = Window::new(
            at("2026-11-04T12:00:00Z"),
            at("2026-11-20T06:00:00Z"),
            Interval::Week,
        )
        .unwrap();
        let starts: Vec<String> = w.starts().iter().map(|s| s.to_rfc3339()).collect();
        assert_eq!(
            starts,
            [
                "2026-11-04T12:00:00+00:00",
                "2026-11-09T00:00:00+00:00",
                "2026-11-16T00:00:00+00:00"
            ]
        );
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(w.bucket_of(day("2026-11-04")), 0);
        assert_eq!(w.bucket_of(day("2026-11-08")), 0);
        assert_eq!(w.bucket_of(day("2026-11-09")), 1);
        assert_eq!(w.bucket_of(day("2026-11-20")), 2);
    }

    #[test]
    fn a_window_on_a_boundary_has_no_empty_tail() {
        let w = Window::new(
            at("2026-01-01T00:00:00Z"),
            at("2026-04-01T00:00:00Z"),
            Interval::Month,
        )
        .unwrap();
        assert_eq!(w.starts().len(), 3);
        let w = Window::new(
            at("2026-01-31T00:00:00Z"),
            at("2026-03-01T00:00:00Z"),
            Interval::Month,
        )
        .unwrap();
        assert_eq!(w.starts()[1], at("2026-02-01T00:00:00Z"));
        assert_eq!(w.starts().len(), 2);
    }

    #[test]
    fn bounds_are_refused_with_their_reason() {
        let t = at("2026-01-01T00:00:00Z");
        assert!(Window::new(t, t, Interval::Day).is_err());
        assert!(Window::new(t, t - chrono::Duration::seconds(1), Interval::Day).is_err());
        assert!(Window::new(t, t + chrono::Duration::days(400), Interval::Day).is_ok());
        let e = Window::new(t, t + chrono::Duration::days(401), Interval::Day).unwrap_err();
        assert!(e.to_string().contains("at most 400"), "{e}");
        assert!(Window::new(t, t + chrono::Duration::days(401), Interval::Week).is_ok());
    }
}
