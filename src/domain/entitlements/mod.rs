//! The entitlement service: the single source of truth for what an organization may do.
//!
//! `check` answers enabled / limit / used / remaining / resetsAt / status / upgrade prompt
//! for one feature; `consume` checks and records usage inside the caller's transaction.
//! No code anywhere compares plan names: the catalog (`plans.toml`) says what each plan
//! grants, and this module measures usage against it.
//!
//! Race-freedom: callers consume after locking the organization row in their transaction
//! (`orgs::access_locked`: `SELECT … FOR UPDATE` on PostgreSQL; SQLite serializes writes on
//! its single write connection), so the check and the write cannot interleave.
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait};

use super::{
    ids::OrgId,
    plans::{Catalog, FeatureKind, Grant, Plan},
    DomainError, DomainResult, Services,
};
use crate::db::Tx;
use entity::{entitlement_overrides, organizations, usage_counters};

mod overrides;
mod usage;

pub use overrides::*;
pub(crate) use usage::*;

/// Usage level of a limited feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageStatus {
    /// Below 80 %.
    Ok,
    /// From 80 %.
    Approaching,
    /// At or over the limit.
    Reached,
    /// A BOOLEAN feature that is off for this organization.
    NotInPlan,
}

/// An in-context call to action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpgradePrompt {
    /// The feature that is limited or off.
    pub feature: String,
    /// e.g. "You've used 3 of 3 projects on Free — upgrade to Pro for unlimited projects."
    pub message: String,
    /// The cheapest plan that lifts the limit or has the feature.
    pub plan_key: String,
    /// Where the frontend sends the user.
    pub url: String,
}

/// One feature as it stands for one organization.
#[derive(Clone, Debug)]
pub struct Entitlement {
    /// Feature name.
    pub feature: String,
    /// How it is measured.
    pub kind: FeatureKind,
    /// Whether it is available at all.
    pub enabled: bool,
    /// The cap; None = unlimited.
    pub limit: Option<i64>,
    /// Current usage (0 for booleans).
    pub used: i64,
    /// End of the current period (periodic limits only).
    pub resets_at: Option<DateTime<Utc>>,
    /// A per-organization override is in force.
    pub overridden: bool,
    /// How to lift it, when it is approaching, reached or off and a plan lifts it.
    pub upgrade: Option<UpgradePrompt>,
}

impl Entitlement {
    /// What is left; None = unlimited.
    pub fn remaining(&self) -> Option<i64> {
        self.limit.map(|l| (l - self.used).max(0))
    }

    /// OK, APPROACHING from 80 %, REACHED at the limit; NOT_IN_PLAN for a BOOLEAN feature
    /// that is off (it has no limit to be under).
    pub fn status(&self) -> UsageStatus {
        if self.kind == FeatureKind::Boolean && !self.enabled {
            return UsageStatus::NotInPlan;
        }
        match self.limit {
            Some(l) if self.used >= l => UsageStatus::Reached,
            Some(l) if self.used * 5 >= l * 4 => UsageStatus::Approaching,
            _ => UsageStatus::Ok,
        }
    }
}

/// The monthly billing period containing `now`, from the org's billing anchor. Days are
/// clamped for short months (anchor 31 → Feb 28/29), always from the anchor, so Jan 31 →
/// Feb 28 → Mar 31.
pub fn period(anchor: DateTime<Utc>, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let months = (now.year() - anchor.year()) * 12 + now.month() as i32 - anchor.month() as i32;
    let mut k = months;
    while k > i32::MIN / 2 && add_months(anchor, k) > now {
        k -= 1;
    }
    while add_months(anchor, k + 1) <= now {
        k += 1;
    }
    (add_months(anchor, k), add_months(anchor, k + 1))
}

fn add_months(anchor: DateTime<Utc>, months: i32) -> DateTime<Utc> {
    let total = anchor.year() * 12 + anchor.month0() as i32 + months;
    let (year, month) = (total.div_euclid(12), total.rem_euclid(12) as u32 + 1);
    let last_day = (28..=31)
        .rev()
        .find(|d| NaiveDate::from_ymd_opt(year, month, *d).is_some())
        .expect("every month has 28 days");
    let date =
        NaiveDate::from_ymd_opt(year, month, anchor.day().min(last_day)).expect("valid date");
    Utc.from_utc_datetime(&date.and_time(anchor.time()))
}

fn plan_grant(plan: &Plan, feature: &str) -> (bool, Option<i64>) {
    match plan.features.get(feature) {
        Some(Grant::Flag(b)) => (*b, None),
        Some(Grant::Count(n)) => (true, Some(*n)),
        _ => (true, None),
    }
}

/// Whether grant `a` is at least as generous as `b` for using one more.
fn lifts(enabled: bool, limit: Option<i64>, used: i64, kind: FeatureKind) -> bool {
    match kind {
        FeatureKind::Boolean => enabled,
        _ => enabled && limit.is_none_or(|l| used < l),
    }
}

/// Where an upgrade prompt sends people: `KFACTOR_UPGRADE_URL` (a checkout URL template)
/// with `{organization}`, `{plan}` and `{feature}` filled in.
pub fn upgrade_url(svc: &Services, org: OrgId, plan: &str, feature: &str) -> String {
    upgrade_url_for(svc, Some(org), plan, feature)
}

/// [`upgrade_url`], for an organization that may be unknown (the upgrade page of a link
/// without one): its placeholder is then left empty.
pub fn upgrade_url_for(svc: &Services, org: Option<OrgId>, plan: &str, feature: &str) -> String {
    use crate::config::urlencode;
    svc.config
        .upgrade_url()
        .replace(
            "{organization}",
            &org.map(|o| o.to_string()).unwrap_or_default(),
        )
        .replace("{plan}", &urlencode(plan))
        .replace("{feature}", &urlencode(feature))
}

/// The cheapest plan above the current one that lifts the feature for this usage.
#[allow(clippy::too_many_arguments)]
fn upgrade(
    svc: &Services,
    org: OrgId,
    plan: &Plan,
    feature: &str,
    label: &str,
    kind: FeatureKind,
    used: i64,
    limit: Option<i64>,
) -> Option<UpgradePrompt> {
    let target = svc
        .plans
        .plans
        .iter()
        .filter(|p| p.rank > plan.rank)
        .find(|p| {
            let (e, l) = plan_grant(p, feature);
            lifts(e, l, used, kind) && (kind == FeatureKind::Boolean || l.is_none() || l > limit)
        })?;
    let (_, target_limit) = plan_grant(target, feature);
    let lifted = match (kind, target_limit) {
        (FeatureKind::Boolean, _) => format!("to get {label}"),
        (_, None) => format!("for unlimited {label}"),
        (_, Some(n)) => format!("for {n} {label}"),
    };
    let message = match (kind, limit) {
        (FeatureKind::Boolean, _) => format!(
            "{} are not included in {} — upgrade to {} {lifted}.",
            capitalize(label),
            plan.name,
            target.name
        ),
        (_, Some(l)) => format!(
            "You've used {used} of {l} {label} on {} — upgrade to {} {lifted}.",
            plan.name, target.name
        ),
        (_, None) => format!("Upgrade to {} {lifted}.", target.name),
    };
    let url = upgrade_url(svc, org, &target.key, feature);
    Some(UpgradePrompt {
        feature: feature.to_string(),
        message,
        plan_key: target.key.clone(),
        url,
    })
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// The plan an organization is on (the default plan if its key left the catalog).
pub fn plan_of<'a>(catalog: &'a Catalog, org: &organizations::Model) -> &'a Plan {
    catalog
        .plan(&org.plan_key)
        .unwrap_or_else(|| catalog.default_plan())
}

async fn active_override(
    db: &impl ConnectionTrait,
    org: OrgId,
    feature: &str,
    now: DateTime<Utc>,
) -> DomainResult<Option<entitlement_overrides::Model>> {
    Ok(
        entitlement_overrides::Entity::find_by_id((org, feature.to_string()))
            .one(db)
            .await?
            .filter(|o| o.expires_at.is_none_or(|e| e > now)),
    )
}

/// How much of a feature an organization uses, from stored facts.
async fn used(
    db: &impl ConnectionTrait,
    org: OrgId,
    feature: &str,
    kind: FeatureKind,
    period_start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> DomainResult<i64> {
    let n = match (kind, feature) {
        (FeatureKind::Boolean, _) => 0,
        (FeatureKind::Limit, "projects") => super::projects::in_org(org).count(db).await?,
        (FeatureKind::Limit, "members") => {
            // Pending invitations count: they become members when accepted.
            let members = super::orgs::members_in_org(org).count(db).await?;
            let pending = super::invitations::pending_in_org(org, now)
                .count(db)
                .await?;
            members + pending
        }
        (FeatureKind::Limit, "active_shared_links") => {
            super::sharing::active_in_org(org, now).count(db).await?
        }
        // Periodic limits, and limits the code does not measure itself, count what was consumed.
        (FeatureKind::PeriodicLimit, _) => return counter(db, org, feature, period_start).await,
        (FeatureKind::Limit, _) => return counter(db, org, feature, epoch()).await,
    };
    Ok(n as i64)
}

fn epoch() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

async fn counter(
    db: &impl ConnectionTrait,
    org: OrgId,
    feature: &str,
    period_start: DateTime<Utc>,
) -> DomainResult<i64> {
    Ok(
        usage_counters::Entity::find_by_id((org, feature.to_string(), period_start))
            .one(db)
            .await?
            .map_or(0, |c| c.used),
    )
}

/// One feature for one organization (`None` if the catalog does not know the feature).
pub async fn check(
    db: &impl ConnectionTrait,
    svc: &Services,
    org: &organizations::Model,
    feature: &str,
) -> DomainResult<Option<Entitlement>> {
    let Some(f) = svc.plans.features.get(feature) else {
        return Ok(None);
    };
    let now = svc.now();
    let plan = plan_of(&svc.plans, org);
    let (mut enabled, mut limit) = plan_grant(plan, feature);
    let ov = active_override(db, org.id, feature, now).await?;
    if let Some(o) = &ov {
        // More generous wins.
        enabled = enabled || o.enabled == Some(true);
        if o.unlimited {
            limit = None;
        } else if let (Some(l), Some(ol)) = (limit, o.limit_value) {
            limit = Some(l.max(ol));
        }
    }
    let (start, end) = period(org.billing_anchor, now);
    let used = used(db, org.id, feature, f.kind, start, now).await?;
    let mut e = Entitlement {
        feature: feature.to_string(),
        kind: f.kind,
        enabled,
        limit: if f.kind == FeatureKind::Boolean {
            None
        } else {
            limit
        },
        used,
        resets_at: (f.kind == FeatureKind::PeriodicLimit).then_some(end),
        overridden: ov.is_some(),
        upgrade: None,
    };
    if !e.enabled || e.status() != UsageStatus::Ok {
        e.upgrade = upgrade(svc, org.id, plan, feature, &f.label, f.kind, used, e.limit);
    }
    Ok(Some(e))
}

/// Every feature of the catalog for one organization.
pub async fn all(
    db: &impl ConnectionTrait,
    svc: &Services,
    org: &organizations::Model,
) -> DomainResult<Vec<Entitlement>> {
    let mut out = Vec::with_capacity(svc.plans.features.len());
    for name in svc.plans.features.keys() {
        if let Some(e) = check(db, svc, org, name).await? {
            out.push(e);
        }
    }
    Ok(out)
}

/// Requires a boolean feature: FEATURE_NOT_IN_PLAN (with the plan that has it) when off.
pub async fn require(
    db: &impl ConnectionTrait,
    svc: &Services,
    org: &organizations::Model,
    feature: &str,
) -> DomainResult<()> {
    match check(db, svc, org, feature).await? {
        Some(e) if !e.enabled => Err(DomainError::FeatureNotInPlan {
            message: e
                .upgrade
                .as_ref()
                .map(|u| u.message.clone())
                .unwrap_or_else(|| format!("{feature} is not included in your plan.")),
            upgrade: e.upgrade.map(Box::new),
        }),
        _ => Ok(()),
    }
}

/// Checks and records `n` more of a limited feature in the caller's transaction (the caller
/// holds the organization's lock). Refuses with LIMIT_REACHED and an upgrade prompt; writes
/// one LIMIT_REACHED event and `usage.limit_reached` message when usage crosses 80 % and
/// when it reaches 100 %, once per period.
pub async fn consume(
    tx: &mut Tx,
    svc: &Services,
    org: &organizations::Model,
    feature: &str,
    n: i64,
) -> DomainResult<()> {
    match ensure_room(&**tx, svc, org, feature, n).await? {
        Some(e) => record(tx, svc, org, e, n).await,
        None => Ok(()),
    }
}

/// Checks that `n` more of a feature fit, writing nothing: LIMIT_REACHED or
/// FEATURE_NOT_IN_PLAN (with an upgrade prompt) otherwise. Call it for every feature an
/// action needs before consuming any, so a refusal never leaves a partial consumption.
pub async fn ensure_room(
    db: &impl ConnectionTrait,
    svc: &Services,
    org: &organizations::Model,
    feature: &str,
    n: i64,
) -> DomainResult<Option<Entitlement>> {
    let Some(e) = check(db, svc, org, feature).await? else {
        return Ok(None);
    };
    if !e.enabled {
        require(db, svc, org, feature).await?;
    }
    let plan = plan_of(&svc.plans, org);
    if let Some(limit) = e.limit {
        if e.used + n > limit {
            let label = &svc.plans.features[feature].label;
            let prompt = upgrade(
                svc,
                org.id,
                plan,
                feature,
                label,
                e.kind,
                e.used,
                Some(limit),
            );
            let message = prompt
                .as_ref()
                .map(|p| p.message.clone())
                .unwrap_or_else(|| {
                    format!(
                        "You've used {} of {limit} {label} on {}.",
                        e.used, plan.name
                    )
                });
            return Err(DomainError::LimitReached {
                feature: feature.to_string(),
                message,
                upgrade: prompt.map(Box::new),
            });
        }
    }
    Ok(Some(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn periods_follow_the_anchor_and_clamp_short_months() {
        let anchor = at("2026-01-31T10:00:00Z");
        assert_eq!(
            period(anchor, at("2026-02-15T00:00:00Z")),
            (at("2026-01-31T10:00:00Z"), at("2026-02-28T10:00:00Z"))
        );
        assert_eq!(
            period(anchor, at("2026-02-28T10:00:00Z")),
            (at("2026-02-28T10:00:00Z"), at("2026-03-31T10:00:00Z"))
        );
        assert_eq!(
            period(anchor, at("2028-02-29T12:00:00Z")),
            (at("2028-02-29T10:00:00Z"), at("2028-03-31T10:00:00Z"))
        );
        assert_eq!(
            period(anchor, at("2026-01-31T09:59:59Z")),
            (at("2025-12-31T10:00:00Z"), at("2026-01-31T10:00:00Z"))
        );
        let mid = at("2026-03-15T00:00:00Z");
        assert_eq!(
            period(mid, at("2026-12-20T00:00:00Z")).0,
            at("2026-12-15T00:00:00Z")
        );
    }
}
