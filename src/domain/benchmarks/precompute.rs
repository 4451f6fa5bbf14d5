//! The windows computed ahead of any request: the dashboard's preset ranges (the last 4, 12, 26
//! and 52 weeks up to the end of today, UTC: [`PRESET_WEEKS`], [`Range::window`]). The
//! precompute worker (`crate::precompute`) calls [`refresh_due`] at start and whenever a kept
//! window is due, so a computation of each is always fresh and no request waits for one. A kept
//! window is computed again once three quarters of `KFACTOR_BENCHMARKS_CACHE_SECONDS` have
//! passed ([`lead`]); shortly before midnight tomorrow's windows are computed too, so the
//! first dashboards of the new day find theirs. Other windows are computed on demand
//! ([`super::snapshot::get`]).
use chrono::{DateTime, Duration, Utc};

use super::snapshot::{self, Key, Snapshot};
use crate::domain::{
    dashboard::{Range, PRESET_WEEKS},
    DomainResult, Services,
};

/// How long before a kept computation expires it is computed again: a quarter of the TTL.
pub fn lead(ttl: Duration) -> Duration {
    ttl / 4
}

/// The windows kept at `now`: the presets of today and, within `lead` of midnight, of
/// tomorrow.
pub fn windows(now: DateTime<Utc>, lead: Duration) -> Vec<Key> {
    let presets = |at: DateTime<Utc>| PRESET_WEEKS.map(|n| Range::Weeks(n).window(at));
    let mut out = presets(now).to_vec();
    let soon = now + lead;
    if soon.date_naive() != now.date_naive() {
        out.extend(presets(soon));
    }
    out
}

/// What one [`refresh_due`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pass {
    /// Windows computed.
    pub computed: usize,
    /// Time spent computing them.
    pub took: std::time::Duration,
    /// When the next window is due (by the service's clock).
    pub next_due: DateTime<Utc>,
}

/// Computes every kept window that is missing or due now, one after another. `None` when
/// precomputing is off (`KFACTOR_BENCHMARKS_PRECOMPUTE=false`, or the cache is off).
pub async fn refresh_due(svc: &Services) -> DomainResult<Option<Pass>> {
    let ttl = svc.config.benchmarks_cache;
    if !svc.config.benchmarks_precompute || ttl <= Duration::zero() {
        return Ok(None);
    }
    let lead = lead(ttl);
    let keep = windows(svc.now(), lead);
    svc.benchmarks.want(&keep);
    let mut pass = Pass {
        computed: 0,
        took: std::time::Duration::ZERO,
        next_due: svc.now() + ttl,
    };
    // A computation from the clock's future (a test moved it back) is no use either.
    let due = |at: DateTime<Utc>| at + ttl - lead;
    let current = |s: &Snapshot| {
        let now = svc.now();
        s.computed_at <= now && now < due(s.computed_at)
    };
    for key in &keep {
        if !svc.benchmarks.kept(*key).is_some_and(|s| current(&s)) {
            if let Some(took) = snapshot::refresh(svc, *key, current).await? {
                pass.took += took;
                pass.computed += 1;
            }
        }
        let at = svc.benchmarks.kept(*key).map(|s| s.computed_at);
        // Cleared meanwhile (an opt-out change): the wake-up it sent brings the worker back.
        pass.next_due = pass.next_due.min(at.map_or(svc.now(), due));
    }
    // Tomorrow's windows join the set `lead` before midnight.
    let now = svc.now();
    let midnight = Range::Weeks(1).window(now).1;
    if now < midnight - lead {
        pass.next_due = pass.next_due.min(midnight - lead);
    }
    Ok(Some(pass))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_presets_of_today_and_near_midnight_of_tomorrow() {
        let lead = Duration::seconds(75);
        let noon = windows(at("2026-12-04T12:00:00Z"), lead);
        assert_eq!(noon.len(), 4);
        assert_eq!(
            noon[1],
            (at("2026-09-12T00:00:00Z"), at("2026-12-05T00:00:00Z")),
            "12 weeks up to the end of today"
        );
        let late = windows(at("2026-12-04T23:59:00Z"), lead);
        assert_eq!(late.len(), 8);
        assert_eq!(&late[..4], &noon[..]);
        assert_eq!(
            late[5],
            (at("2026-09-13T00:00:00Z"), at("2026-12-06T00:00:00Z"))
        );
    }
}
