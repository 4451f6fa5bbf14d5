//! Plans and entitlements as the API shows them: the catalog, a feature's standing for an
//! organization, and upgrade prompts.
use async_graphql::{ComplexObject, Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::{svc, types::EntitlementKind};
use crate::domain::{self, plans::Grant};

/// A plan of the catalog.
#[derive(Clone)]
pub struct Plan(pub domain::plans::Plan);

#[Object]
impl Plan {
    /// Stable key, e.g. "free".
    async fn key(&self) -> &str {
        &self.0.key
    }

    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Higher is more.
    async fn rank(&self) -> i32 {
        self.0.rank
    }

    /// Every feature of the catalog, as this plan grants it.
    async fn features(&self, ctx: &Context<'_>) -> Vec<PlanFeature> {
        let catalog = &svc(ctx).plans;
        catalog
            .features
            .iter()
            .map(|(name, f)| {
                let (enabled, limit) = match self.0.features.get(name) {
                    Some(Grant::Flag(b)) => (*b, None),
                    Some(Grant::Count(n)) => (true, Some((*n).min(i32::MAX as i64) as i32)),
                    _ => (true, None),
                };
                PlanFeature {
                    feature: name.clone(),
                    kind: f.kind.into(),
                    enabled,
                    limit,
                }
            })
            .collect()
    }
}

/// What a plan grants for one feature.
#[derive(SimpleObject, Clone)]
pub struct PlanFeature {
    /// Feature name, e.g. "projects".
    pub feature: String,
    /// How it is measured.
    pub kind: EntitlementKind,
    /// Whether the feature is available at all.
    pub enabled: bool,
    /// The cap; null means unlimited.
    pub limit: Option<i32>,
}

/// In-context call to action, e.g. "You've used 4 of 5 projects — upgrade to Pro for
/// unlimited projects".
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct UpgradePrompt {
    /// The feature that is limited or off.
    pub feature: String,
    /// Written for the end user.
    pub message: String,
    /// Key of the cheapest plan that lifts the limit (resolved as `plan`).
    #[graphql(skip)]
    pub plan_key: String,
    /// Where the frontend sends the user to upgrade.
    pub url: String,
}

impl From<domain::entitlements::UpgradePrompt> for UpgradePrompt {
    fn from(u: domain::entitlements::UpgradePrompt) -> Self {
        UpgradePrompt {
            feature: u.feature,
            message: u.message,
            plan_key: u.plan_key,
            url: u.url,
        }
    }
}

#[ComplexObject]
impl UpgradePrompt {
    /// The cheapest plan that lifts the limit or has the feature.
    async fn plan(&self, ctx: &Context<'_>) -> Plan {
        let catalog = &svc(ctx).plans;
        Plan(
            catalog
                .plan(&self.plan_key)
                .unwrap_or_else(|| catalog.default_plan())
                .clone(),
        )
    }
}

/// A billing period.
#[derive(SimpleObject, Clone)]
pub struct BillingPeriod {
    /// Inclusive start.
    pub start: DateTime<Utc>,
    /// Exclusive end (when periodic limits reset).
    pub end: DateTime<Utc>,
}

/// Usage level of a limited feature.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::entitlements::UsageStatus")]
pub enum UsageStatus {
    /// Below 80 % of the limit.
    Ok,
    /// From 80 %.
    Approaching,
    /// At the limit.
    Reached,
    /// A BOOLEAN feature that is off on this organization's plan.
    NotInPlan,
}

/// One feature as it stands for an organization: plan, overrides and usage together.
pub struct Entitlement(pub domain::entitlements::Entitlement);

#[Object]
impl Entitlement {
    /// e.g. "projects", "members", "active_shared_links", "invitations_per_month",
    /// "edit_links", "webhooks".
    async fn feature(&self) -> &str {
        &self.0.feature
    }
    /// How it is measured.
    async fn kind(&self) -> EntitlementKind {
        self.0.kind.into()
    }
    /// Whether it is available.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// The cap; null = unlimited.
    async fn limit(&self) -> Option<i32> {
        self.0.limit.map(clamp_i32)
    }
    /// Current usage.
    async fn used(&self) -> i32 {
        clamp_i32(self.0.used)
    }
    /// What is left; null = unlimited.
    async fn remaining(&self) -> Option<i32> {
        self.0.remaining().map(clamp_i32)
    }
    /// PERIODIC_LIMIT only: end of the current period.
    async fn resets_at(&self) -> Option<DateTime<Utc>> {
        self.0.resets_at
    }
    /// OK, APPROACHING (from 80 %) or REACHED; NOT_IN_PLAN for a BOOLEAN feature that is off.
    async fn status(&self) -> UsageStatus {
        self.0.status().into()
    }
    /// How to lift it, when the status is not OK or the feature is off and a plan lifts it.
    async fn upgrade(&self) -> Option<UpgradePrompt> {
        self.0.upgrade.clone().map(Into::into)
    }
    /// A per-organization override is in force.
    async fn overridden(&self) -> bool {
        self.0.overridden
    }
}

fn clamp_i32(n: i64) -> i32 {
    n.clamp(0, i32::MAX as i64) as i32
}
