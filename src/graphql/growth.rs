//! Growth metrics (METRICS.md): `Query.growth` for platform staff and `Organization.growth`
//! for an organization's ADMINs and OWNERs. The resolver reads which fields were selected and
//! asks the domain for only those parts.
use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::{
    auth,
    error::{internal, top_level},
    loaders,
    plans::UpgradePrompt,
    svc,
    types::{AcquisitionSource, User},
};
use crate::domain::{
    identity::AcquisitionSource as DSource,
    ids::OrgId,
    metrics::{self, Counts, Parts, Question},
    DomainError,
};

/// The length of a series bucket (UTC; weeks start on Monday).
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "metrics::Interval")]
pub enum Interval {
    /// One UTC day.
    Day,
    /// Monday 00:00 UTC to the next Monday.
    Week,
    /// A calendar month in UTC.
    Month,
}

/// Signups of one acquisition source.
#[derive(SimpleObject, Clone, Copy)]
pub struct SourceCount {
    /// The source.
    source: AcquisitionSource,
    /// Signups credited to it (organization scope: members who joined, by their source).
    signups: i32,
}

/// The invitation funnel over the invitations first sent in the window; each step is a
/// subset of the one before.
#[derive(SimpleObject, Clone, Copy)]
pub struct InviteFunnel {
    /// Invitations first sent in the window (team and viral; re-sends count once).
    sent: i32,
    /// Of those, whose link was opened at any time.
    opened: i32,
    /// Of those, accepted by a new or an existing user.
    accepted: i32,
    /// Of those, whose accepting user has reached activation.
    activated: i32,
}

/// The share funnel of the window.
#[derive(SimpleObject, Clone, Copy)]
pub struct ShareFunnel {
    /// Shared links created in the window.
    links_created: i32,
    /// Link opens in the window, guests and users.
    visits: i32,
    /// Distinct visitor ids among those opens.
    unique_visitors: i32,
    /// SHARE signups in the window (organization scope: through this organization's links).
    signups: i32,
    /// signups ÷ uniqueVisitors (0 when there were no visitors).
    conversion_rate: f64,
}

/// One inviter of the window.
pub struct InviterStat(metrics::InviterStat);

#[Object]
impl InviterStat {
    /// Who first sent the invitations.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        loaders::user(ctx, self.0.user_id)
            .await?
            .map(User::new)
            .ok_or_else(|| internal(anyhow::anyhow!("inviter {} not found", self.0.user_id)))
    }

    /// Invitations they first sent in the window.
    async fn invitations_sent(&self) -> i32 {
        clamp(self.0.invitations_sent)
    }

    /// Of those, accepted.
    async fn accepted(&self) -> i32 {
        clamp(self.0.accepted)
    }
}

/// Which product surfaces generate invitations, shares and signups.
#[derive(SimpleObject, Clone)]
pub struct SurfaceStat {
    /// The surface label the client sent ("unknown" when it sent none).
    surface: String,
    /// Invitations first sent from it in the window.
    invitations_sent: i32,
    /// Shared links created from it in the window.
    shares_created: i32,
    /// INVITE and SHARE signups in the window whose invitation or link came from it.
    viral_signups: i32,
}

/// One bucket of the series: the definitions applied to `[periodStart, next periodStart)`
/// clipped to the window.
pub struct GrowthPoint(metrics::Point);

#[Object]
impl GrowthPoint {
    /// Start of the bucket (clipped to `from` for the first one).
    async fn period_start(&self) -> DateTime<Utc> {
        self.0.period_start
    }

    /// Signups in the bucket (organization scope: members who joined).
    async fn signups(&self) -> i32 {
        clamp(self.0.counts.signups())
    }

    /// The same by source: every source, zero included, in enum order.
    async fn signups_by_source(&self) -> Vec<SourceCount> {
        by_source(&self.0.counts)
    }

    /// INVITE + SHARE + REFERRAL signups.
    async fn viral_signups(&self) -> i32 {
        clamp(self.0.counts.viral_signups())
    }

    /// Invitations first sent in the bucket.
    async fn invitations_sent(&self) -> i32 {
        clamp(self.0.counts.sent)
    }

    /// Of those, accepted at any time.
    async fn invitations_accepted(&self) -> i32 {
        clamp(self.0.counts.accepted)
    }

    /// K of the bucket's cohort.
    async fn viral_coefficient(&self) -> f64 {
        self.0.counts.viral_coefficient()
    }
}

/// Growth of the window `[from, to)`; see METRICS.md for every definition.
pub struct GrowthMetrics {
    growth: metrics::Growth,
}

impl GrowthMetrics {
    fn totals(&self) -> async_graphql::Result<&Counts> {
        self.growth
            .totals
            .as_ref()
            .ok_or_else(|| internal(anyhow::anyhow!("growth totals were not computed")))
    }
}

#[Object]
impl GrowthMetrics {
    /// Inclusive start of the window.
    async fn from(&self) -> DateTime<Utc> {
        self.growth.window.from
    }

    /// Exclusive end of the window.
    async fn to(&self) -> DateTime<Utc> {
        self.growth.window.to
    }

    /// Users created in the window (organization scope: members who joined in it).
    async fn signups(&self) -> async_graphql::Result<i32> {
        Ok(clamp(self.totals()?.signups()))
    }

    /// The same by source: every source, zero included, in enum order.
    async fn signups_by_source(&self) -> async_graphql::Result<Vec<SourceCount>> {
        Ok(by_source(self.totals()?))
    }

    /// Users who signed up (organization scope: joined) in the window.
    async fn cohort_size(&self) -> async_graphql::Result<i32> {
        Ok(clamp(self.totals()?.signups()))
    }

    /// Invitations (team and viral) first sent in the window.
    async fn invitations_sent(&self) -> async_graphql::Result<i32> {
        Ok(clamp(self.totals()?.sent))
    }

    /// i: viral invitations the cohort first sent within W of signing up, per cohort member.
    async fn invitations_per_user(&self) -> async_graphql::Result<f64> {
        Ok(self.totals()?.invitations_per_user())
    }

    /// c: of those invitations, the share whose invitee signed up through them within W.
    async fn invitation_conversion_rate(&self) -> async_graphql::Result<f64> {
        Ok(self.totals()?.conversion_rate())
    }

    /// K = invitationsPerUser × invitationConversionRate.
    async fn viral_coefficient(&self) -> async_graphql::Result<f64> {
        Ok(self.totals()?.viral_coefficient())
    }

    /// SHARE + REFERRAL signups credited to the cohort within W, per cohort member.
    async fn share_coefficient(&self) -> async_graphql::Result<f64> {
        Ok(self.totals()?.share_coefficient())
    }

    /// 1 / (1 − viralCoefficient); null when viralCoefficient ≥ 1, 1 for an empty cohort.
    async fn amplification(&self) -> async_graphql::Result<Option<f64>> {
        Ok(self.totals()?.amplification())
    }

    /// The invite funnel over the invitations first sent in the window.
    async fn invite_funnel(&self) -> async_graphql::Result<InviteFunnel> {
        let t = self.totals()?;
        Ok(InviteFunnel {
            sent: clamp(t.sent),
            opened: clamp(t.opened),
            accepted: clamp(t.accepted),
            activated: clamp(t.activated),
        })
    }

    /// The share funnel of the window.
    async fn share_funnel(&self) -> async_graphql::Result<ShareFunnel> {
        let f = self
            .growth
            .share_funnel
            .ok_or_else(|| internal(anyhow::anyhow!("share funnel was not computed")))?;
        Ok(ShareFunnel {
            links_created: clamp(f.links_created),
            visits: clamp(f.visits),
            unique_visitors: clamp(f.unique_visitors),
            signups: clamp(f.signups),
            conversion_rate: f.conversion_rate(),
        })
    }

    /// Users who first sent invitations in the window, by accepted, then sent, then id (at
    /// most 100). Null when the plan lacks advanced metrics (see `upgrade`).
    async fn top_inviters(
        &self,
        #[graphql(default = 10)] limit: Option<i32>,
    ) -> async_graphql::Result<Option<Vec<InviterStat>>> {
        // Checked here rather than by an argument validator, whose error carries no code.
        let limit = match limit.unwrap_or(10) {
            n @ 1..=100 => n as usize,
            _ => {
                return Err(top_level(DomainError::invalid(
                    &["limit"],
                    "`limit` must be between 1 and 100.",
                )));
            }
        };
        Ok(self
            .growth
            .top_inviters
            .as_ref()
            .map(|all| all.iter().take(limit).map(|s| InviterStat(*s)).collect()))
    }

    /// Which product surfaces generate invitations, shares and viral signups, by viral
    /// signups then label. Null when the plan lacks advanced metrics (see `upgrade`).
    async fn surfaces(&self) -> Option<Vec<SurfaceStat>> {
        self.growth.surfaces.as_ref().map(|all| {
            all.iter()
                .map(|s| SurfaceStat {
                    surface: s.surface.clone(),
                    invitations_sent: clamp(s.invitations_sent),
                    shares_created: clamp(s.shares_created),
                    viral_signups: clamp(s.viral_signups),
                })
                .collect()
        })
    }

    /// One point per interval, oldest first, empty intervals included; the points add up to
    /// the window totals. Null when the plan lacks advanced metrics (see `upgrade`).
    async fn series(&self) -> Option<Vec<GrowthPoint>> {
        self.growth
            .series
            .as_ref()
            .map(|all| all.iter().map(|p| GrowthPoint(*p)).collect())
    }

    /// Median hours from a cohort member's signup (organization scope: joining) to the signup
    /// of an invitee credited to them; null when there are none.
    async fn median_viral_cycle_hours(&self) -> Option<f64> {
        self.growth.median_viral_cycle_hours
    }

    /// False while conversions can still land: until `to` + 2 × the attribution window.
    async fn complete(&self) -> bool {
        self.growth.complete
    }

    /// Set when some fields are null because of the plan.
    async fn upgrade(&self) -> Option<UpgradePrompt> {
        self.growth.upgrade.clone().map(Into::into)
    }
}

fn clamp(n: i64) -> i32 {
    n.clamp(0, i32::MAX as i64) as i32
}

fn by_source(c: &Counts) -> Vec<SourceCount> {
    metrics::SOURCES
        .iter()
        .zip(c.by_source)
        .map(|(s, n)| SourceCount {
            source: DSource::into(*s),
            signups: clamp(n),
        })
        .collect()
}

/// The parts the selection of a `growth` field needs.
fn selected_parts(ctx: &Context<'_>) -> Parts {
    let la = ctx.look_ahead();
    let has = |f: &str| la.field(f).exists();
    Parts {
        signups: has("signups") || has("signupsBySource") || has("cohortSize"),
        cohort: [
            "invitationsPerUser",
            "invitationConversionRate",
            "viralCoefficient",
            "shareCoefficient",
            "amplification",
        ]
        .iter()
        .any(|f| has(f)),
        invitations: has("invitationsSent") || has("inviteFunnel"),
        share_funnel: has("shareFunnel"),
        top_inviters: has("topInviters"),
        surfaces: has("surfaces"),
        series: has("series"),
        median: has("medianViralCycleHours"),
    }
}

/// `Query.growth`: platform staff and API keys with `growth:read`.
pub async fn platform(
    ctx: &Context<'_>,
    q: Question,
) -> async_graphql::Result<Option<GrowthMetrics>> {
    let caller = auth(ctx).caller().map_err(top_level)?;
    let growth = metrics::platform(svc(ctx), caller, q, selected_parts(ctx))
        .await
        .map_err(top_level)?;
    Ok(Some(GrowthMetrics { growth }))
}

/// `Organization.growth`: the organization's ADMINs and OWNERs, platform staff, and API keys
/// with `growth:read`.
pub async fn organization(
    ctx: &Context<'_>,
    org: OrgId,
    q: Question,
) -> async_graphql::Result<Option<GrowthMetrics>> {
    let growth = match auth(ctx).caller() {
        Ok(caller) => metrics::organization(svc(ctx), caller, org, q, selected_parts(ctx))
            .await
            .map_err(top_level),
        Err(e) => Err(top_level(e)),
    };
    growth.map(|growth| Some(GrowthMetrics { growth }))
}

/// Growth queries.
#[derive(Default)]
pub struct GrowthQuery;

#[Object]
impl GrowthQuery {
    /// Platform-wide growth; staff only (null and FORBIDDEN for anyone else). The window is
    /// `[from, to)`; `interval` cuts the series (at most 400 buckets).
    async fn growth(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        #[graphql(default_with = "Some(Interval::Week)")] interval: Option<Interval>,
    ) -> async_graphql::Result<Option<GrowthMetrics>> {
        platform(ctx, question(from, to, interval)).await
    }
}

/// The domain question of a `growth` field's arguments.
/// An explicit `interval: null` means the default, WEEK.
pub fn question(from: DateTime<Utc>, to: DateTime<Utc>, interval: Option<Interval>) -> Question {
    Question {
        from,
        to,
        interval: interval.unwrap_or(Interval::Week).into(),
    }
}
