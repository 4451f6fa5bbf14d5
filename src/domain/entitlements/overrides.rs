//! Entitlement overrides: staff grant an organization more (or less) than its plan, optionally
//! until a date.
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, EntityTrait, QuerySelect};

use crate::db::Tx;
use crate::domain::{access::Caller, ids::OrgId, DomainError, DomainResult, Services};
use entity::{entitlement_overrides, organizations};

/// What `setEntitlementOverride` asks for one feature of one organization.
#[derive(Clone, Copy, Debug)]
pub struct OverrideChange<'a> {
    /// The feature, e.g. "projects".
    pub feature: &'a str,
    /// The new cap (not negative); None with `unlimited` false: no cap override.
    pub limit: Option<i64>,
    /// No cap at all.
    pub unlimited: bool,
    /// Turns a flag feature on or off.
    pub enabled: Option<bool>,
    /// When the override ends by itself.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Sets (or, with neither limit nor enabled, removes) an override: platform staff only
/// (PERMISSION_DENIED for anyone else, API keys included). `limit: Some(-1)` is not
/// accepted; use `unlimited`.
pub async fn set_override(
    svc: &Services,
    caller: Caller<'_>,
    org: OrgId,
    change: OverrideChange<'_>,
) -> DomainResult<organizations::Model> {
    caller.require_staff("override entitlements")?;
    let OverrideChange {
        feature,
        limit,
        unlimited,
        enabled,
        expires_at,
    } = change;
    if !svc.plans.features.contains_key(feature) {
        return Err(DomainError::invalid(
            &["feature"],
            format!("Unknown feature {feature:?}."),
        ));
    }
    if limit.is_some_and(|l| l < 0) {
        return Err(DomainError::invalid(
            &["limit"],
            "limit cannot be negative.",
        ));
    }
    let now = svc.now();
    if expires_at.is_some_and(|e| e <= now) {
        return Err(DomainError::invalid(
            &["expiresAt"],
            "The expiry must be in the future.",
        ));
    }
    let tx = Tx::begin(&svc.db).await?;
    // Locked: two overrides of one organization at once take turns (the later one wins)
    // instead of both inserting after both deleted.
    let o = organizations::Entity::find_by_id(org)
        .lock_exclusive()
        .one(&*tx)
        .await?
        .ok_or(DomainError::NotFound("Organization"))?;
    entitlement_overrides::Entity::delete_by_id((org, feature.to_string()))
        .exec(&*tx)
        .await?;
    if limit.is_some() || unlimited || enabled.is_some() {
        entitlement_overrides::Entity::insert(entitlement_overrides::ActiveModel {
            organization_id: Set(org),
            feature: Set(feature.to_string()),
            limit_value: Set(limit),
            unlimited: Set(unlimited),
            enabled: Set(enabled),
            expires_at: Set(expires_at),
            created_at: Set(now),
        })
        .exec_without_returning(&*tx)
        .await?;
    }
    tx.commit(&svc.bus).await?;
    Ok(o)
}
