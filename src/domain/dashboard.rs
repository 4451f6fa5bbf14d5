//! The growth dashboard's rules: which scopes a user may pick, which window a range means,
//! and the numbers of a window beside those of the window before it. The numbers come from
//! [`metrics`], exactly as `Organization.growth` / `Query.growth` answer them.
use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};

use super::{
    access::Caller,
    identity,
    ids::UserId,
    metrics::{self, Growth, Interval, Parts, Question, Scope},
    orgs::{self, Role},
    DomainError, DomainResult, Services,
};

/// Preset ranges, in weeks.
pub const PRESET_WEEKS: [u32; 4] = [4, 12, 26, 52];

/// The window a reader chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// The last `n` weeks up to the end of today (UTC).
    Weeks(u32),
    /// From the start of `from` to the end of `to` (both UTC days, inclusive).
    Custom {
        /// First day.
        from: NaiveDate,
        /// Last day.
        to: NaiveDate,
    },
}

impl Range {
    /// Parses `range` (`4w`, `12w`, `26w`, `52w`, `custom`) with the custom dates
    /// (`YYYY-MM-DD`). A missing range is the last 12 weeks.
    pub fn parse(range: Option<&str>, from: Option<&str>, to: Option<&str>) -> DomainResult<Range> {
        match range.map(str::trim).filter(|r| !r.is_empty()) {
            None => Ok(Range::Weeks(12)),
            Some("custom") => {
                let day = |v: Option<&str>, field: &str| {
                    v.and_then(|s| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok())
                        .ok_or_else(|| DomainError::invalid(&[field], "Pick a date (YYYY-MM-DD)."))
                };
                let (from, to) = (day(from, "from")?, day(to, "to")?);
                if to < from {
                    return Err(DomainError::invalid(
                        &["to"],
                        "The last day must not be before the first day.",
                    ));
                }
                Ok(Range::Custom { from, to })
            }
            Some(r) => r
                .strip_suffix('w')
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|n| PRESET_WEEKS.contains(n))
                .map(Range::Weeks)
                .ok_or_else(|| {
                    DomainError::invalid(&["range"], "Pick 4w, 12w, 26w, 52w or custom.")
                }),
        }
    }

    /// The value of the `range` parameter.
    pub fn key(&self) -> String {
        match self {
            Range::Weeks(n) => format!("{n}w"),
            Range::Custom { .. } => "custom".into(),
        }
    }

    /// The half-open window `[from, to)` in UTC. Preset ranges end at the next UTC
    /// midnight, so today is included and every bound is a whole day.
    pub fn window(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let midnight = |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap());
        match *self {
            Range::Weeks(n) => {
                let to = midnight(now.date_naive()) + Duration::days(1);
                (to - Duration::weeks(n.into()), to)
            }
            Range::Custom { from, to } => (midnight(from), midnight(to) + Duration::days(1)),
        }
    }
}

/// Parses an interval name (`day`, `week`, `month`, any case); missing: a week.
pub fn parse_interval(raw: Option<&str>) -> DomainResult<Interval> {
    match raw.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("week") => Ok(Interval::Week),
        Some("day") => Ok(Interval::Day),
        Some("month") => Ok(Interval::Month),
        Some(_) => Err(DomainError::invalid(
            &["interval"],
            "Pick day, week or month.",
        )),
    }
}

/// A scope the user may look at.
#[derive(Clone, Debug)]
pub struct Choice {
    /// Platform or one organization.
    pub scope: Scope,
    /// What the picker shows.
    pub name: String,
}

/// The scopes a user may pick: organizations where they are ADMIN or OWNER (not being
/// deleted), oldest membership first, then "Platform" for staff.
pub async fn choices(svc: &Services, user: &entity::users::Model) -> DomainResult<Vec<Choice>> {
    let mut out: Vec<Choice> = orgs::memberships_of(&svc.db.read, user.id)
        .await?
        .into_iter()
        .filter(|(m, o)| m.role >= Role::Admin && o.deletion_scheduled_for.is_none())
        .map(|(_, o)| Choice {
            scope: Scope::Organization(o.id),
            name: o.name,
        })
        .collect();
    if user.is_staff {
        out.push(Choice {
            scope: Scope::Platform,
            name: "Platform".into(),
        });
    }
    Ok(out)
}

/// A window's numbers beside the previous window of the same length.
#[derive(Clone, Debug)]
pub struct Dashboard {
    /// The window asked for, with every part the plan allows.
    pub current: Growth,
    /// `[from − (to − from), from)`: totals, funnels and the median only.
    pub previous: Growth,
    /// Names of the top inviters.
    pub names: HashMap<UserId, String>,
}

/// Every part of the growth answer.
pub const ALL_PARTS: Parts = Parts {
    signups: true,
    cohort: true,
    invitations: true,
    share_funnel: true,
    top_inviters: true,
    surfaces: true,
    series: true,
    median: true,
};

/// The dashboard of `scope` for the window of `q`, authorized like the API (ADMIN, OWNER,
/// staff).
pub async fn load(
    svc: &Services,
    user: &entity::users::Model,
    scope: Scope,
    q: Question,
) -> DomainResult<Dashboard> {
    let caller = Caller::User(user);
    let len = q.to - q.from;
    let prev_q = Question {
        from: q.from - len,
        to: q.from,
        interval: q.interval,
    };
    let prev_parts = Parts {
        top_inviters: false,
        surfaces: false,
        series: false,
        ..ALL_PARTS
    };
    let (current, previous) = match scope {
        Scope::Platform => (
            metrics::platform(svc, caller, q, ALL_PARTS).await?,
            metrics::platform(svc, caller, prev_q, prev_parts).await?,
        ),
        Scope::Organization(org) => (
            metrics::organization(svc, caller, org, q, ALL_PARTS).await?,
            metrics::organization(svc, caller, org, prev_q, prev_parts).await?,
        ),
    };
    let ids: Vec<UserId> = current
        .top_inviters
        .iter()
        .flatten()
        .map(|i| i.user_id)
        .collect();
    let names = identity::users_by_ids(&svc.db.read, &ids)
        .await?
        .into_iter()
        .map(|u| {
            (
                u.id,
                if u.deleted_at.is_some() {
                    "Deleted user".into()
                } else {
                    u.name
                },
            )
        })
        .collect();
    Ok(Dashboard {
        current,
        previous,
        names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_whole_utc_days_ending_tonight() {
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 6, 30, 0).unwrap();
        let (from, to) = Range::parse(Some("4w"), None, None).unwrap().window(now);
        assert_eq!(to, Utc.with_ymd_and_hms(2026, 12, 3, 0, 0, 0).unwrap());
        assert_eq!(from, Utc.with_ymd_and_hms(2026, 11, 5, 0, 0, 0).unwrap());
        let c = Range::parse(Some("custom"), Some("2026-11-02"), Some("2026-11-08")).unwrap();
        assert_eq!(
            c.window(now),
            (
                Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap(),
                Utc.with_ymd_and_hms(2026, 11, 9, 0, 0, 0).unwrap()
            )
        );
        assert_eq!(Range::parse(None, None, None).unwrap(), Range::Weeks(12));
        assert!(Range::parse(Some("3w"), None, None).is_err());
        assert!(Range::parse(Some("custom"), Some("2026-11-09"), Some("2026-11-08")).is_err());
        assert!(Range::parse(Some("custom"), Some("yesterday"), Some("2026-11-08")).is_err());
        assert_eq!(parse_interval(Some("DAY")).unwrap(), Interval::Day);
        assert!(parse_interval(Some("hour")).is_err());
    }
}
