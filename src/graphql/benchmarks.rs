//! Cross-organization benchmarks: `Organization.benchmarks` and `setBenchmarksOptOut`.
use async_graphql::{Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::{
    auth,
    error::{payload, top_level, UserError},
    svc,
};
use crate::domain::{
    benchmarks::{self as b, Hidden as DHidden, Metric as DMetric, SizeBucket as DBucket},
    ids::OrgId,
};

/// Organizations of similar size, by member count.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "DBucket")]
pub enum SizeBucket {
    /// One member.
    One,
    /// 2–5 members.
    TwoToFive,
    /// 6–20 members.
    SixToTwenty,
    /// 21–100 members.
    TwentyOneToHundred,
    /// More than 100 members.
    OverHundred,
}

/// A benchmarked growth metric (definitions in METRICS.md).
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "DMetric")]
pub enum BenchmarkMetric {
    /// `growth.viralCoefficient` (K); defined when the window has a cohort.
    ViralCoefficient,
    /// `inviteFunnel.accepted ÷ inviteFunnel.sent`; defined when an invitation was sent.
    InviteAcceptanceRate,
    /// `inviteFunnel.activated ÷ inviteFunnel.accepted`; defined when one was accepted.
    ActivationRate,
    /// `shareFunnel.conversionRate` (signups ÷ unique visitors); defined with a visitor.
    ShareConversion,
}

/// Why a benchmark is withheld.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "DHidden")]
pub enum BenchmarkHiddenReason {
    /// This organization opted out (`setBenchmarksOptOut`): it neither contributes nor sees.
    OptedOut,
    /// Fewer than `minContributors` other organizations of the size bucket contribute.
    TooFewContributors,
}

/// Where one metric of this organization stands among the other organizations of its size
/// bucket. Never names or identifies another organization: only how many contribute, the
/// percentile and the median.
#[derive(Clone, Copy)]
pub struct Benchmark(b::Benchmark);

#[Object]
impl Benchmark {
    /// Which metric.
    async fn metric(&self) -> BenchmarkMetric {
        self.0.metric.into()
    }

    /// This organization's value in the window; null when it has no denominator (then it
    /// does not contribute either).
    async fn value(&self) -> Option<f64> {
        self.0.value
    }

    /// True when the percentile and median are shown.
    async fn available(&self) -> bool {
        self.0.hidden.is_none()
    }

    /// Why not, when not available.
    async fn hidden_reason(&self) -> Option<BenchmarkHiddenReason> {
        self.0.hidden.map(Into::into)
    }

    /// Other organizations of the bucket that contribute a value (0 when opted out).
    async fn contributors(&self) -> i32 {
        i32::try_from(self.0.contributors).unwrap_or(i32::MAX)
    }

    /// Other contributing organizations needed before the benchmark is shown.
    async fn min_contributors(&self) -> i32 {
        b::MIN_OTHERS as i32
    }

    /// Percent (0–100) of the contributors with a lower value, those with an equal value
    /// counting half; null when hidden or without a value of one's own.
    async fn percentile(&self) -> Option<f64> {
        self.0.percentile
    }

    /// The contributors' median (the mean of the two middle values for an even count); null
    /// when hidden.
    async fn median(&self) -> Option<f64> {
        self.0.median
    }
}

/// This organization's growth metrics beside those of organizations of its size, for one
/// window.
pub struct Benchmarks(b::Benchmarks);

impl Benchmarks {
    fn metric(&self, m: DMetric) -> Benchmark {
        let found = self.0.metrics.iter().find(|x| x.metric == m).copied();
        Benchmark(found.expect("every metric is answered"))
    }
}

#[Object]
impl Benchmarks {
    /// Window start (inclusive).
    async fn from(&self) -> DateTime<Utc> {
        self.0.from
    }

    /// Window end (exclusive).
    async fn to(&self) -> DateTime<Utc> {
        self.0.to
    }

    /// This organization's size bucket (by its member count).
    async fn size_bucket(&self) -> SizeBucket {
        self.0.size_bucket.into()
    }

    /// True when the organization opted out: every benchmark is then OPTED_OUT.
    async fn opted_out(&self) -> bool {
        self.0.opted_out
    }

    /// When the numbers were computed; an answer may be up to
    /// `KFACTOR_BENCHMARKS_CACHE_SECONDS` old.
    async fn computed_at(&self) -> DateTime<Utc> {
        self.0.computed_at
    }

    /// K, the viral coefficient.
    async fn viral_coefficient(&self) -> Benchmark {
        self.metric(DMetric::ViralCoefficient)
    }

    /// Invitations accepted ÷ sent.
    async fn invite_acceptance_rate(&self) -> Benchmark {
        self.metric(DMetric::InviteAcceptanceRate)
    }

    /// Accepted invitations whose user activated ÷ accepted.
    async fn activation_rate(&self) -> Benchmark {
        self.metric(DMetric::ActivationRate)
    }

    /// Share-link signups ÷ unique visitors.
    async fn share_conversion(&self) -> Benchmark {
        self.metric(DMetric::ShareConversion)
    }

    /// Every benchmark, in the order above.
    async fn all(&self) -> Vec<Benchmark> {
        self.0.metrics.iter().copied().map(Benchmark).collect()
    }
}

/// `Organization.benchmarks`: null with FORBIDDEN for members, like `growth`.
pub async fn organization(
    ctx: &Context<'_>,
    org: OrgId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> async_graphql::Result<Option<Benchmarks>> {
    let caller = auth(ctx).caller().map_err(top_level)?;
    b::for_org(svc(ctx), caller, org, from, to)
        .await
        .map(|x| Some(Benchmarks(x)))
        .map_err(top_level)
}

/// Result of `setBenchmarksOptOut`.
#[derive(SimpleObject, Default)]
pub struct SetBenchmarksOptOutPayload {
    /// The setting after the change.
    opted_out: Option<bool>,
    /// What went wrong, if anything.
    user_errors: Vec<UserError>,
}

/// Benchmark settings.
#[derive(Default)]
pub struct BenchmarkMutation;

#[Object]
impl BenchmarkMutation {
    /// Opts an organization out of the cross-organization benchmarks (`optOut: true`: it no
    /// longer contributes and sees no benchmarks) or back in (ADMIN or OWNER).
    async fn set_benchmarks_opt_out(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        opt_out: bool,
    ) -> async_graphql::Result<SetBenchmarksOptOutPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = match OrgId::parse(&organization_id) {
            Ok(org) => b::set_opt_out(svc(ctx), user.id, org, opt_out).await,
            Err(e) => Err(e.into()),
        };
        payload(
            r,
            |v| SetBenchmarksOptOutPayload {
                opted_out: Some(v),
                user_errors: vec![],
            },
            |user_errors| SetBenchmarksOptOutPayload {
                opted_out: None,
                user_errors,
            },
        )
    }
}
