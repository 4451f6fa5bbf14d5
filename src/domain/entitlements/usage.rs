//! Usage recorded as it happens, and the alerts (activity, webhook, notification) when an
//! organization nears or reaches a limit.
use sea_orm::{
    sea_query::{Expr, OnConflict},
    ActiveValue::Set,
    EntityTrait,
};
use serde_json::json;

use super::*;
use crate::db::Tx;
use crate::domain::{activity::ActivityType, plans::FeatureKind, DomainResult, Services};
use crate::outbox::{self, Actor, Event, WebhookEvent};
use entity::{organizations, usage_alerts, usage_counters};

/// Records `n` more of a feature whose room was checked, and announces thresholds.
pub(super) async fn record(
    tx: &mut Tx,
    svc: &Services,
    org: &organizations::Model,
    e: Entitlement,
    n: i64,
) -> DomainResult<()> {
    let feature = e.feature.as_str();
    let now = svc.now();
    let (start, _) = period(org.billing_anchor, now);
    let record_at = match e.kind {
        FeatureKind::PeriodicLimit => Some(start),
        FeatureKind::Limit
            if !matches!(feature, "projects" | "members" | "active_shared_links") =>
        {
            Some(epoch())
        }
        _ => None,
    };
    if let Some(period_start) = record_at {
        usage_counters::Entity::insert(usage_counters::ActiveModel {
            organization_id: Set(org.id),
            feature: Set(feature.to_string()),
            period_start: Set(period_start),
            used: Set(n),
        })
        .on_conflict(
            OnConflict::columns([
                usage_counters::Column::OrganizationId,
                usage_counters::Column::Feature,
                usage_counters::Column::PeriodStart,
            ])
            .value(
                usage_counters::Column::Used,
                sea_orm::sea_query::ExprTrait::add(
                    Expr::col((usage_counters::Entity, usage_counters::Column::Used)),
                    n,
                ),
            )
            .to_owned(),
        )
        .exec_without_returning(&**tx)
        .await?;
    }
    if let Some(limit) = e.limit {
        alert(tx, svc, org, feature, e.used + n, limit).await?;
    }
    Ok(())
}

/// Announces 80 % and 100 % of a limit once per period.
pub(super) async fn alert(
    tx: &mut Tx,
    svc: &Services,
    org: &organizations::Model,
    feature: &str,
    used: i64,
    limit: i64,
) -> DomainResult<()> {
    let now = svc.now();
    let plan = plan_of(&svc.plans, org);
    let (period_start, _) = period(org.billing_anchor, now);
    let label = &svc.plans.features[feature].label;
    for threshold in [80i32, 100] {
        let crossed = if threshold == 100 {
            used >= limit
        } else {
            used * 5 >= limit * 4
        };
        if !crossed || limit == 0 && threshold == 80 {
            continue;
        }
        let inserted = usage_alerts::Entity::insert(usage_alerts::ActiveModel {
            organization_id: Set(org.id),
            feature: Set(feature.to_string()),
            period_start: Set(period_start),
            threshold: Set(threshold),
            created_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([
                usage_alerts::Column::OrganizationId,
                usage_alerts::Column::Feature,
                usage_alerts::Column::PeriodStart,
                usage_alerts::Column::Threshold,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&**tx)
        .await?;
        if inserted == 0 {
            continue;
        }
        let summary = if threshold == 100 {
            format!(
                "{} reached its limit of {limit} {label} on {}",
                org.name, plan.name
            )
        } else {
            format!(
                "{} has used {used} of {limit} {label} on {}, past {threshold} % of the limit",
                org.name, plan.name
            )
        };
        if threshold == 100 {
            crate::domain::notifications::fanout::on_limit_reached(tx, now, org, &summary).await?;
        }
        outbox::record(
            tx,
            now,
            Event {
                org: org.id,
                kind: ActivityType::LimitReached,
                actor: Actor::default(),
                resource: None,
                summary,
                data: json!({ "feature": feature, "threshold": threshold, "limit": limit, "used": used, "plan": plan.key }),
                webhook: Some(WebhookEvent {
                    event_type: "usage.limit_reached",
                    data: json!({
                        "organization_id": org.id.to_string(),
                        "feature": feature,
                        "limit": limit,
                        "used": used,
                        "plan": plan.key,
                        "threshold": threshold,
                    }),
                }),
            },
        )
        .await?;
    }
    Ok(())
}

/// After a plan change, announce the limits the organization is already at or near.
pub(crate) async fn alert_all(
    tx: &mut Tx,
    svc: &Services,
    org: &organizations::Model,
) -> DomainResult<()> {
    for e in all(&**tx, svc, org).await? {
        if let Some(limit) = e.limit {
            alert(tx, svc, org, &e.feature, e.used, limit).await?;
        }
    }
    Ok(())
}
