//! Growth metrics exactly as METRICS.md defines them: the cohort, the viral coefficient K
//! and its factors, the share coefficient, funnels, top inviters, surfaces, a series, and
//! the median viral cycle time, for the whole platform or one organization.
//!
//! Every number comes from stored facts (users, memberships, invitations, shared links and
//! visits): whole UTC days from per-day rollups that are kept equal to the facts in the facts'
//! own transactions ([`probe`]), the partial first and last day of a window from the facts
//! themselves ([`facts`]). A fixed set of statements answers any window or interval, inside
//! one read-only snapshot so the parts of one answer agree. Only the parts a caller asks for
//! are computed.
pub mod every_org;
mod facts;
pub mod probe;
mod read;
pub mod rebuild;
pub mod sql;
pub mod visitors;
mod window;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use entity::ids::UserId;
use sea_orm::{AccessMode, DatabaseBackend, IsolationLevel, TransactionTrait};

pub use window::{Interval, Window, MAX_BUCKETS};

use super::{
    access::{self, Caller},
    entitlements::{self, UpgradePrompt},
    identity::AcquisitionSource,
    ids::OrgId,
    DomainError, DomainResult, Services,
};
use read::{Span, Who};
use sql::{Mode, Sql};

/// The plan feature that unlocks the series, surfaces and top inviters in organization scope.
pub const ADVANCED_FEATURE: &str = "advanced_metrics";
/// Most top inviters one answer lists.
pub const TOP_INVITERS_MAX: usize = 100;

/// Whose growth: everything, or one organization's members, invitations and links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Platform staff: every user and organization.
    Platform,
    /// One organization.
    Organization(OrgId),
}

/// Which parts of the answer to compute.
#[derive(Clone, Copy, Debug, Default)]
pub struct Parts {
    /// signups, signupsBySource, cohortSize.
    pub signups: bool,
    /// invitationsPerUser, invitationConversionRate, viralCoefficient, shareCoefficient,
    /// amplification.
    pub cohort: bool,
    /// invitationsSent, inviteFunnel.
    pub invitations: bool,
    /// shareFunnel.
    pub share_funnel: bool,
    /// topInviters.
    pub top_inviters: bool,
    /// surfaces.
    pub surfaces: bool,
    /// series.
    pub series: bool,
    /// medianViralCycleHours.
    pub median: bool,
}

/// Acquisition sources in contract (enum) order: the index of a source in every
/// `by_source` array.
pub const SOURCES: [AcquisitionSource; 5] = [
    AcquisitionSource::Organic,
    AcquisitionSource::Invite,
    AcquisitionSource::Referral,
    AcquisitionSource::Share,
    AcquisitionSource::Paid,
];

/// The whole of time, as far as facts go (bounds of rebuilds and measurements).
pub fn all_time() -> (DateTime<Utc>, DateTime<Utc>) {
    (
        Utc.with_ymd_and_hms(1900, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(9999, 1, 1, 0, 0, 0).unwrap(),
    )
}

/// 00:00 UTC of a `YYYY-MM-DD` day.
pub(crate) fn midnight(day: &str) -> DateTime<Utc> {
    let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").expect("a stored day");
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
}

/// 00:00 UTC of the day after a `YYYY-MM-DD` day.
pub(crate) fn next_midnight(day: &str) -> DateTime<Utc> {
    midnight(day) + chrono::Duration::days(1)
}

/// A PostgreSQL advisory lock key for some bytes.
pub(crate) fn lock_key(parts: &[&[u8]]) -> i64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"kfactor-growth");
    for p in parts {
        h.update((p.len() as u32).to_be_bytes());
        h.update(p);
    }
    i64::from_be_bytes(h.finalize()[..8].try_into().expect("8 bytes"))
}

/// PostgreSQL: takes the transaction-scoped advisory locks `keys` in ascending order (so two
/// transactions locking overlapping sets cannot deadlock), in statements of a bounded size.
pub(crate) async fn advisory_locks(
    db: &impl sea_orm::ConnectionTrait,
    mut keys: Vec<i64>,
) -> Result<(), sea_orm::DbErr> {
    use sea_orm::{DatabaseBackend, Statement, Value};
    keys.sort_unstable();
    keys.dedup();
    for chunk in keys.chunks(5000) {
        let list = (1..=chunk.len())
            .map(|i| format!("(${i}::bigint)"))
            .collect::<Vec<_>>()
            .join(", ");
        // OFFSET 0 keeps the planner from calling the lock function before the sort.
        db.execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            format!(
                "SELECT COUNT(pg_advisory_xact_lock(k)) AS n FROM \
                 (SELECT k FROM (VALUES {list}) AS t(k) ORDER BY k OFFSET 0) AS s"
            ),
            chunk.iter().map(|k| Value::from(*k)).collect::<Vec<_>>(),
        ))
        .await?;
    }
    Ok(())
}

/// Additive counts of one day, one bucket or the whole window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Signups (organization scope: memberships begun) by source, in [`SOURCES`] order.
    pub by_source: [i64; 5],
    /// Viral invitations the cohort first sent within W of its start.
    pub cohort_invitations: i64,
    /// Those that became signups through the invitation within W of the send.
    pub cohort_conversions: i64,
    /// SHARE and REFERRAL signups credited to the cohort within W of its start.
    pub cohort_shares: i64,
    /// Invitations first sent (team and viral).
    pub sent: i64,
    /// Of those, opened at any time (an accept counts as an open).
    pub opened: i64,
    /// Of those, accepted at any time.
    pub accepted: i64,
    /// Of those, whose accepting user is activated.
    pub activated: i64,
}

impl Counts {
    /// The counts of a `growth_days` row (or a sum of rows), in [`crate::rollups::DAY_COLUMNS`] order.
    pub fn from_row(v: &[i64; 15]) -> Counts {
        use crate::rollups::col;
        let mut by_source = [0; 5];
        by_source.copy_from_slice(&v[col::SIGNUPS..col::SIGNUPS + 5]);
        Counts {
            by_source,
            cohort_invitations: v[col::COHORT_INVITATIONS],
            cohort_conversions: v[col::COHORT_CONVERSIONS],
            cohort_shares: v[col::COHORT_SHARES],
            sent: v[col::SENT],
            opened: v[col::OPENED],
            accepted: v[col::ACCEPTED],
            activated: v[col::ACTIVATED],
        }
    }

    fn add(&mut self, o: &Counts) {
        for (a, b) in self.by_source.iter_mut().zip(o.by_source) {
            *a += b;
        }
        self.cohort_invitations += o.cohort_invitations;
        self.cohort_conversions += o.cohort_conversions;
        self.cohort_shares += o.cohort_shares;
        self.sent += o.sent;
        self.opened += o.opened;
        self.accepted += o.accepted;
        self.activated += o.activated;
    }

    /// All signups; also the cohort size (the cohort is who signed up, or joined, in it).
    pub fn signups(&self) -> i64 {
        self.by_source.iter().sum()
    }

    /// INVITE + SHARE + REFERRAL signups.
    pub fn viral_signups(&self) -> i64 {
        self.by_source[1] + self.by_source[2] + self.by_source[3]
    }

    /// i: viral invitations per cohort member (0 for an empty cohort).
    pub fn invitations_per_user(&self) -> f64 {
        ratio(self.cohort_invitations, self.signups())
    }

    /// c: the share of those invitations that converted (0 when none were sent).
    pub fn conversion_rate(&self) -> f64 {
        ratio(self.cohort_conversions, self.cohort_invitations)
    }

    /// K = i × c, computed as conversions ÷ cohort so it is exact.
    pub fn viral_coefficient(&self) -> f64 {
        ratio(self.cohort_conversions, self.signups())
    }

    /// Invitations accepted ÷ invitations sent (inviteFunnel.accepted ÷ sent; 0 when none
    /// were sent).
    pub fn acceptance_rate(&self) -> f64 {
        ratio(self.accepted, self.sent)
    }

    /// Of the accepted invitations, the share whose accepting user is activated
    /// (inviteFunnel.activated ÷ accepted; 0 when none were accepted).
    pub fn activation_rate(&self) -> f64 {
        ratio(self.activated, self.accepted)
    }

    /// SHARE and REFERRAL signups credited to the cohort per member.
    pub fn share_coefficient(&self) -> f64 {
        ratio(self.cohort_shares, self.signups())
    }

    /// 1 / (1 − K) while K < 1 (as cohort ÷ (cohort − conversions), exactly); 1 for an empty
    /// cohort; `None` when K ≥ 1.
    pub fn amplification(&self) -> Option<f64> {
        let (n, k) = (self.signups(), self.cohort_conversions);
        if n == 0 {
            Some(1.0)
        } else if k < n {
            Some(n as f64 / (n - k) as f64)
        } else {
            None
        }
    }
}

fn ratio(a: i64, b: i64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// The share funnel of the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShareFunnel {
    /// Links created in the window.
    pub links_created: i64,
    /// Link opens in the window.
    pub visits: i64,
    /// Distinct visitor ids among those opens.
    pub unique_visitors: i64,
    /// SHARE signups in the window (organization scope: through its links).
    pub signups: i64,
}

impl ShareFunnel {
    /// signups ÷ uniqueVisitors, 0 without visitors.
    pub fn conversion_rate(&self) -> f64 {
        ratio(self.signups, self.unique_visitors)
    }
}

/// One inviter of the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InviterStat {
    /// The user who first sent the invitations.
    pub user_id: UserId,
    /// Invitations they first sent in the window.
    pub invitations_sent: i64,
    /// Of those, accepted.
    pub accepted: i64,
}

/// One product surface of the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SurfaceStat {
    /// The label ("unknown" when none was given).
    pub surface: String,
    /// Invitations first sent from it.
    pub invitations_sent: i64,
    /// Shared links created from it.
    pub shares_created: i64,
    /// INVITE and SHARE signups whose invitation or link came from it.
    pub viral_signups: i64,
}

/// One bucket of the series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// The (clipped) start of the bucket.
    pub period_start: DateTime<Utc>,
    /// The bucket's counts; its cohort is who signed up (joined) in it.
    pub counts: Counts,
}

/// The answer to a growth question; each part is `Some` when it was asked for (and, for the
/// gated parts, allowed by the plan).
#[derive(Clone, Debug)]
pub struct Growth {
    /// The window asked about.
    pub window: Window,
    /// Window totals.
    pub totals: Option<Counts>,
    /// The share funnel.
    pub share_funnel: Option<ShareFunnel>,
    /// Top inviters, best first (at most [`TOP_INVITERS_MAX`]).
    pub top_inviters: Option<Vec<InviterStat>>,
    /// Surfaces, most viral signups first.
    pub surfaces: Option<Vec<SurfaceStat>>,
    /// One point per bucket, oldest first, empty buckets included.
    pub series: Option<Vec<Point>>,
    /// Median hours from a cohort member's start to an invitee's signup.
    pub median_viral_cycle_hours: Option<f64>,
    /// False while conversions can still land: until `to + 2W` has passed.
    pub complete: bool,
    /// Set when the plan withholds the series, surfaces and top inviters.
    pub upgrade: Option<UpgradePrompt>,
}

/// The question: a window `[from, to)` cut into buckets of `interval`.
#[derive(Clone, Copy, Debug)]
pub struct Question {
    /// Inclusive start.
    pub from: DateTime<Utc>,
    /// Exclusive end.
    pub to: DateTime<Utc>,
    /// Series bucket length.
    pub interval: Interval,
}

/// Platform growth: staff and API keys with `growth:read`. The caller is authorized before the
/// question is checked, so a refusal reveals nothing.
pub async fn platform(
    svc: &Services,
    caller: Caller<'_>,
    q: Question,
    parts: Parts,
) -> DomainResult<Growth> {
    access::authorize_platform_growth(caller)?;
    let window = Window::new(q.from, q.to, q.interval)?;
    compute(svc, Scope::Platform, window, parts, None).await
}

/// An organization's growth: its ADMINs and OWNERs, staff, and API keys with `growth:read`.
/// Without the plan's advanced metrics the series, surfaces and top inviters are withheld and
/// `upgrade` says how to get them.
pub async fn organization(
    svc: &Services,
    caller: Caller<'_>,
    org: OrgId,
    q: Question,
    parts: Parts,
) -> DomainResult<Growth> {
    let org = access::authorize_org_growth(&svc.db.read, caller, org).await?;
    let window = Window::new(q.from, q.to, q.interval)?;
    let gate = entitlements::check(&svc.db.read, svc, &org, ADVANCED_FEATURE).await?;
    // A catalog without the feature has nothing to sell: nothing is withheld. When no plan of
    // the catalog has it, the parts are withheld without a prompt.
    let gated = match gate {
        Some(e) if !e.enabled => Some(e.upgrade),
        _ => None,
    };
    compute(svc, Scope::Organization(org.id), window, parts, gated).await
}

/// `gated`: the plan withholds the advanced parts (with the prompt that lifts it, if a plan
/// does).
async fn compute(
    svc: &Services,
    scope: Scope,
    window: Window,
    mut parts: Parts,
    gated: Option<Option<UpgradePrompt>>,
) -> DomainResult<Growth> {
    let w = svc.config.attribution_window;
    let mut out = Growth {
        complete: svc.now() >= window.to + w + w,
        totals: None,
        share_funnel: None,
        top_inviters: None,
        surfaces: None,
        series: None,
        median_viral_cycle_hours: None,
        upgrade: None,
        window,
    };
    if let Some(upgrade) = gated {
        parts.series = false;
        parts.surfaces = false;
        parts.top_inviters = false;
        out.upgrade = upgrade;
    }
    let window = out.window.clone();
    let who = match scope {
        Scope::Platform => Who {
            scope: crate::rollups::PLATFORM,
            mode: Mode::Platform,
        },
        Scope::Organization(org) => Who {
            scope: org.0,
            mode: Mode::Org(org),
        },
    };
    let span = Span::new(window.from, window.to);
    let w_ms = w.num_milliseconds();
    let backend = svc.db.backend();
    let sql = Sql::new(backend);
    // One snapshot for every statement of the answer.
    let txn = snapshot(svc).await?;
    let db = &txn;

    if parts.signups || parts.cohort || parts.invitations || parts.series || parts.share_funnel {
        let cohort = parts.cohort || parts.series;
        let days = read::days(db, &sql, who, &span, w_ms, cohort).await?;
        let mut totals = Counts::default();
        let mut buckets = vec![Counts::default(); window.starts().len()];
        let (mut links, mut visits, mut share_signups) = (0, 0, 0);
        for (d, row) in &days {
            use crate::rollups::col;
            let c = Counts::from_row(row);
            totals.add(&c);
            let day = NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|e| DomainError::Internal(anyhow::anyhow!("bad day {d:?}: {e}")))?;
            buckets[window.bucket_of(day)].add(&c);
            links += row[col::LINKS];
            visits += row[col::VISITS];
            share_signups += row[col::SHARE_SIGNUPS];
        }
        out.totals = Some(totals);
        if parts.series {
            out.series = Some(
                window
                    .starts()
                    .iter()
                    .zip(buckets)
                    .map(|(s, counts)| Point {
                        period_start: *s,
                        counts,
                    })
                    .collect(),
            );
        }
        if parts.share_funnel {
            out.share_funnel = Some(ShareFunnel {
                links_created: links,
                visits,
                unique_visitors: read::unique_visitors(db, who, &span).await?,
                signups: share_signups,
            });
        }
    }
    if parts.top_inviters {
        out.top_inviters = Some(read::top_inviters(db, who, &span).await?);
    }
    if parts.surfaces {
        out.surfaces = Some(read::surfaces(db, &sql, who, &span, w_ms).await?);
    }
    if parts.median {
        out.median_viral_cycle_hours = read::median_cycle_hours(db, who, &span).await?;
    }
    txn.rollback().await?;
    Ok(out)
}

/// A read transaction in which every statement sees one snapshot (repeatable read on
/// PostgreSQL; SQLite's read transaction already does), so an answer's numbers agree.
pub(super) async fn snapshot(
    svc: &Services,
) -> Result<sea_orm::DatabaseTransaction, sea_orm::DbErr> {
    if svc.db.backend() == DatabaseBackend::Postgres {
        svc.db
            .read
            .begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await
    } else {
        svc.db.read.begin().await
    }
}
