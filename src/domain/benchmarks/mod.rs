//! Cross-organization benchmarks: where an organization's K, invite acceptance rate,
//! activation rate and share conversion of a window stand among the organizations of its size
//! (by member count). Every value is the organization's own growth answer for the window
//! (METRICS.md, through [`metrics::every_org`]); an organization whose metric has no
//! denominator in the window (no cohort, no invitation sent, none accepted, no visitor) does
//! not contribute to that metric.
//!
//! Privacy: a benchmark is shown only when at least [`MIN_OTHERS`] other organizations
//! contribute to it, and the answer carries only counts, a percentile and a median, never an
//! organization's id, name, list or extreme value. Organizations may opt out: they then
//! contribute nothing and see no benchmarks.
pub mod precompute;
pub mod snapshot;
mod stats;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use super::{
    access::{self, Caller},
    ids::{OrgId, UserId},
    metrics::{every_org::OrgTotals, Interval, Window},
    orgs::{self, Role},
    ratelimit, DomainError, DomainResult, Services,
};
use crate::db::Tx;

/// Other contributing organizations a bucket needs before its benchmark is shown.
pub const MIN_OTHERS: usize = 10;

/// Longest window a benchmark covers.
pub const MAX_WINDOW_DAYS: i64 = 3660;

/// Organizations of similar size, by member count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SizeBucket {
    /// One member.
    One = 0,
    /// 2–5 members.
    TwoToFive = 1,
    /// 6–20 members.
    SixToTwenty = 2,
    /// 21–100 members.
    TwentyOneToHundred = 3,
    /// More than 100 members.
    OverHundred = 4,
}

impl SizeBucket {
    /// The bucket of an organization with `members` members (none counts as one).
    pub fn of(members: u64) -> SizeBucket {
        match members {
            0..=1 => SizeBucket::One,
            2..=5 => SizeBucket::TwoToFive,
            6..=20 => SizeBucket::SixToTwenty,
            21..=100 => SizeBucket::TwentyOneToHundred,
            _ => SizeBucket::OverHundred,
        }
    }
}

/// A benchmarked metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// K, the viral coefficient (`growth.viralCoefficient`); needs a cohort.
    ViralCoefficient,
    /// Invitations accepted ÷ sent (`growth.inviteFunnel`); needs an invitation sent.
    InviteAcceptanceRate,
    /// Accepted invitations whose user activated ÷ accepted (`growth.inviteFunnel`); needs
    /// an accepted invitation.
    ActivationRate,
    /// SHARE signups ÷ unique visitors (`growth.shareFunnel.conversionRate`); needs a visitor.
    ShareConversion,
}

impl Metric {
    /// Every metric, in answer order.
    pub const ALL: [Metric; 4] = [
        Metric::ViralCoefficient,
        Metric::InviteAcceptanceRate,
        Metric::ActivationRate,
        Metric::ShareConversion,
    ];

    /// The organization's value from its window totals; `None` without a denominator.
    pub fn value(self, t: &OrgTotals) -> Option<f64> {
        // The ratios of the growth answer itself, from the same counters.
        let c = t.counts();
        match self {
            Metric::ViralCoefficient => (c.signups() > 0).then(|| c.viral_coefficient()),
            Metric::InviteAcceptanceRate => (c.sent > 0).then(|| c.acceptance_rate()),
            Metric::ActivationRate => (c.accepted > 0).then(|| c.activation_rate()),
            Metric::ShareConversion => {
                let s = t.share();
                (s.unique_visitors > 0).then(|| s.conversion_rate())
            }
        }
    }
}

/// Why a benchmark is not shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hidden {
    /// The organization opted out of benchmarks.
    OptedOut,
    /// Fewer than [`MIN_OTHERS`] other organizations of the bucket contribute.
    TooFewContributors,
}

/// One metric's benchmark.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Benchmark {
    /// Which metric.
    pub metric: Metric,
    /// The organization's own value (None: no denominator in the window).
    pub value: Option<f64>,
    /// Set when the benchmark is withheld.
    pub hidden: Option<Hidden>,
    /// Other organizations of the bucket contributing to this metric (0 when opted out).
    pub contributors: usize,
    /// Percent (0–100) of the contributors with a lower value, ties counting half.
    pub percentile: Option<f64>,
    /// The contributors' median.
    pub median: Option<f64>,
}

/// The benchmarks of one organization and window.
#[derive(Clone, Debug, PartialEq)]
pub struct Benchmarks {
    /// Window start (inclusive).
    pub from: DateTime<Utc>,
    /// Window end (exclusive).
    pub to: DateTime<Utc>,
    /// The organization's size bucket.
    pub size_bucket: SizeBucket,
    /// Whether the organization opted out.
    pub opted_out: bool,
    /// When the numbers were computed (answers are served from a computation up to
    /// `KFACTOR_BENCHMARKS_CACHE_SECONDS` old).
    pub computed_at: DateTime<Utc>,
    /// One per metric, in [`Metric::ALL`] order.
    pub metrics: Vec<Benchmark>,
}

/// The benchmarks of `org` for `[from, to)`: its ADMINs and OWNERs, platform staff and API
/// keys with `growth:read` (like its growth). Rate-limited per organization.
pub async fn for_org(
    svc: &Services,
    caller: Caller<'_>,
    org: OrgId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> DomainResult<Benchmarks> {
    let org = authorize(svc, caller, org, from, to).await?;
    let snap = snapshot::get(svc, from, to).await?;
    answer(svc, org, from, to, &snap).await
}

/// Like [`for_org`], computed afresh without the cache (what a cached answer must equal).
pub async fn recompute(
    svc: &Services,
    caller: Caller<'_>,
    org: OrgId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> DomainResult<Benchmarks> {
    let org = authorize(svc, caller, org, from, to).await?;
    let snap = snapshot::compute(svc, from, to).await?;
    answer(svc, org, from, to, &snap).await
}

async fn authorize(
    svc: &Services,
    caller: Caller<'_>,
    org: OrgId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> DomainResult<OrgId> {
    let org = access::authorize_org_growth(&svc.db.read, caller, org)
        .await?
        .id;
    // The same bounds as a growth window (one bucket a month keeps it far from the bucket cap).
    Window::new(from, to, Interval::Month)?;
    if to - from > Duration::days(MAX_WINDOW_DAYS) {
        return Err(DomainError::invalid(
            &["to"],
            format!("A benchmark window is at most {MAX_WINDOW_DAYS} days long."),
        ));
    }
    ratelimit::benchmarks(svc, org)?;
    Ok(org)
}

async fn answer(
    svc: &Services,
    org: OrgId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    snap: &snapshot::Snapshot,
) -> DomainResult<Benchmarks> {
    let opted_out = is_opted_out(svc, org).await?;
    let entry = snap.orgs.get(&org.0).copied();
    let size_bucket = match entry {
        Some(e) => e.bucket,
        None => SizeBucket::of(orgs::members_in_org(org).count(&svc.db.read).await?),
    };
    let metrics = Metric::ALL
        .iter()
        .enumerate()
        .map(|(i, metric)| {
            let value = entry.and_then(|e| e.values[i]);
            if opted_out {
                return Benchmark {
                    metric: *metric,
                    value,
                    hidden: Some(Hidden::OptedOut),
                    contributors: 0,
                    percentile: None,
                    median: None,
                };
            }
            let own = entry.filter(|e| e.contributes).and_then(|e| e.values[i]);
            let s = stats::standing(&snap.sorted[size_bucket as usize][i], own, value);
            let shown = s.others >= MIN_OTHERS;
            Benchmark {
                metric: *metric,
                value,
                hidden: (!shown).then_some(Hidden::TooFewContributors),
                contributors: s.others,
                percentile: s.percentile.filter(|_| shown),
                median: s.median.filter(|_| shown),
            }
        })
        .collect();
    Ok(Benchmarks {
        from,
        to,
        size_bucket,
        opted_out,
        computed_at: snap.computed_at,
        metrics,
    })
}

async fn is_opted_out(svc: &Services, org: OrgId) -> DomainResult<bool> {
    Ok(entity::benchmark_opt_outs::Entity::find_by_id(org.0)
        .one(&svc.db.read)
        .await?
        .is_some())
}

/// Opts `org` out of the benchmarks (`opt_out`) or back in: its ADMINs and OWNERs. Takes
/// effect at once on this instance (its cached computations are dropped), on other instances
/// within `KFACTOR_BENCHMARKS_CACHE_SECONDS`. Returns the new setting.
pub async fn set_opt_out(
    svc: &Services,
    user: UserId,
    org: OrgId,
    opt_out: bool,
) -> DomainResult<bool> {
    use entity::benchmark_opt_outs as b;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    let tx = Tx::begin(&svc.db).await?;
    let a = orgs::access_locked(&tx, user, org).await?;
    a.require(
        Role::Admin,
        "change whether the organization takes part in benchmarks",
    )?;
    // A change drops every cached computation (each costs seconds on a large instance), so
    // changes draw on the same budget as answers.
    ratelimit::benchmarks(svc, org)?;
    // The organization row is locked: no concurrent change of this setting interleaves.
    let current = b::Entity::find_by_id(org.0).one(&*tx).await?;
    let changed = opt_out != current.is_some();
    match (opt_out, current) {
        (true, None) => {
            b::ActiveModel {
                organization_id: Set(org),
                created_at: Set(svc.now()),
            }
            .insert(&*tx)
            .await?;
        }
        (false, Some(_)) => {
            b::Entity::delete_many()
                .filter(b::Column::OrganizationId.eq(org.0))
                .exec(&*tx)
                .await?;
        }
        _ => {}
    }
    tx.commit(&svc.bus).await?;
    if changed {
        svc.benchmarks.clear();
    }
    Ok(opt_out)
}

#[cfg(test)]
mod tests {
    use super::SizeBucket::{self, *};

    #[test]
    fn size_buckets_have_the_documented_bounds() {
        let cases = [
            (0, One),
            (1, One),
            (2, TwoToFive),
            (5, TwoToFive),
            (6, SixToTwenty),
            (20, SixToTwenty),
            (21, TwentyOneToHundred),
            (100, TwentyOneToHundred),
            (101, OverHundred),
            (12_716, OverHundred),
        ];
        for (n, want) in cases {
            assert_eq!(SizeBucket::of(n), want, "{n} members");
        }
    }
}
