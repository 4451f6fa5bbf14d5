//! Billing: who may change a plan, the one function every plan change goes through, and what
//! an organization's billing looks like.
//!
//! Plans change through the billing provider. Owners are sent to checkout (an upgrade
//! prompt carrying the organization, plan and feature); Stripe's signed events
//! ([`stripe`]) then apply the change. `changePlan` remains for platform staff and for
//! server-to-server API keys with `plans:write` (another billing system, support tools).
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Select};
use serde_json::json;

use super::{
    access::{Caller, OrgView, Scope},
    activity::ActivityType,
    entitlements::{self, UpgradePrompt},
    ids::OrgId,
    orgs::{self, Role},
    plans::Plan,
    DomainError, DomainResult, Services,
};
use crate::db::Tx;
use crate::outbox::{self, Actor, Event, WebhookEvent};
use entity::{
    organizations,
    stripe_subscriptions::{self as subscriptions, SubscriptionStatus},
};

pub mod signature;
pub mod stripe;

/// Who made a plan change, as activity and webhooks show it.
#[derive(Clone, Debug)]
pub struct ChangedBy {
    /// `changed_by` of the webhook: `usr_…`, `key_…` or `stripe`.
    pub id: String,
    /// How the activity summary names them.
    pub name: String,
    /// The activity's actor (a user, or nobody).
    pub actor: Actor,
    /// The Stripe event that caused it, if one did.
    pub stripe_event: Option<String>,
}

impl From<Caller<'_>> for ChangedBy {
    fn from(c: Caller<'_>) -> Self {
        ChangedBy {
            id: c.id(),
            name: c.display_name(),
            actor: c.actor(),
            stripe_event: None,
        }
    }
}

impl ChangedBy {
    /// A change applied from a Stripe event.
    pub fn stripe(event_id: &str) -> Self {
        ChangedBy {
            id: "stripe".into(),
            name: "Stripe".into(),
            actor: Actor::default(),
            stripe_event: Some(event_id.to_string()),
        }
    }
}

/// Tenant-scoped query: the Stripe subscriptions paying for one organization.
pub fn subscriptions_in_org(org: OrgId) -> Select<subscriptions::Entity> {
    subscriptions::Entity::find().filter(subscriptions::Column::OrganizationId.eq(org.0))
}

/// Tenant-scoped query: the organization's subscriptions that are attached (their state
/// arrived and they have not ended).
pub fn attached_in_org(org: OrgId) -> Select<subscriptions::Entity> {
    subscriptions_in_org(org)
        .filter(subscriptions::Column::Status.is_not_null())
        .filter(subscriptions::Column::Status.is_not_in([
            SubscriptionStatus::Canceled,
            SubscriptionStatus::IncompleteExpired,
        ]))
}

/// Whether a subscription in this state pays for its plan. A renewal that failed
/// (`past_due`) keeps the plan while Stripe retries; a subscription set to cancel at period
/// end is still `active` until Stripe deletes it.
pub fn grants_plan(status: SubscriptionStatus) -> bool {
    matches!(
        status,
        SubscriptionStatus::Active | SubscriptionStatus::Trialing | SubscriptionStatus::PastDue
    )
}

/// The price ids stored on a subscription row.
pub fn price_ids(s: &subscriptions::Model) -> Vec<String> {
    serde_json::from_value(s.price_ids.clone()).unwrap_or_default()
}

/// Changes an organization's plan, effective at once: platform staff, or an API key with
/// `plans:write`. An OWNER gets PERMISSION_DENIED with an upgrade prompt pointing to
/// checkout; other members PERMISSION_DENIED. Usage counted in the current period is kept and
/// the billing anchor does not move; a downgrade takes nothing away. Returns the organization
/// as the caller sees it and the previous plan.
pub async fn change_plan(
    svc: &Services,
    caller: Caller<'_>,
    org: OrgId,
    plan_key: &str,
) -> DomainResult<(OrgView, Plan)> {
    let target = svc
        .plans
        .plan(plan_key.trim())
        .ok_or_else(|| DomainError::invalid(&["plan"], format!("Unknown plan {plan_key:?}.")))?
        .clone();
    let mut tx = Tx::begin(&svc.db).await?;
    // Locked first: plan changes of one organization (here and from Stripe) take turns.
    let current = lock_org(&tx, org)
        .await?
        .ok_or(DomainError::NotFound("Organization"))?;
    let role = match caller {
        Caller::Key(k) => {
            k.require(Scope::PlansWrite)?;
            None
        }
        Caller::User(u) => {
            let role = orgs::membership(&*tx, org, u.id).await?.map(|m| m.role);
            match role {
                _ if u.is_staff => {}
                Some(Role::Owner) => return Err(checkout_required(svc, &current, &target)),
                Some(_) => {
                    return Err(DomainError::PermissionDenied(
                        "Only owners can change the plan, through checkout.".into(),
                    ))
                }
                None => return Err(DomainError::Forbidden),
            }
            role
        }
    };
    let previous = entitlements::plan_of(&svc.plans, &current).clone();
    let updated = apply_plan(&mut tx, svc, current, &target, &caller.into()).await?;
    tx.commit(&svc.bus).await?;
    Ok((OrgView { org: updated, role }, previous))
}

/// The organization row, locked for the rest of the transaction.
pub(crate) async fn lock_org(tx: &Tx, org: OrgId) -> DomainResult<Option<organizations::Model>> {
    Ok(organizations::Entity::find_by_id(org.0)
        .lock_exclusive()
        .one(&**tx)
        .await?)
}

/// Why an owner's `changePlan` is refused, with the way to checkout.
fn checkout_required(svc: &Services, org: &organizations::Model, target: &Plan) -> DomainError {
    let current = entitlements::plan_of(&svc.plans, org);
    let message = if target.rank > current.rank {
        format!(
            "Upgrades go through checkout: upgrade to {} there and it applies at once.",
            target.name
        )
    } else {
        format!(
            "Plan changes go through billing: to move to {}, change your subscription there.",
            target.name
        )
    };
    DomainError::CheckoutRequired {
        upgrade: Box::new(UpgradePrompt {
            feature: String::new(),
            message: message.clone(),
            plan_key: target.key.clone(),
            url: entitlements::upgrade_url(svc, org.id, &target.key, ""),
        }),
        message,
    }
}

/// Moves a locked organization to `target` inside the caller's transaction: the one path
/// of every plan change (`changePlan` and Stripe events). Writes PLAN_CHANGED and
/// `subscription.upgraded` / `subscription.downgraded` (by rank), then announces the limits
/// the organization is already at or near. Usage and the billing anchor stay as they are.
/// Moving to the plan it is on changes nothing.
pub(crate) async fn apply_plan(
    tx: &mut Tx,
    svc: &Services,
    current: organizations::Model,
    target: &Plan,
    by: &ChangedBy,
) -> DomainResult<organizations::Model> {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};

    let previous = entitlements::plan_of(&svc.plans, &current).clone();
    if previous.key == target.key {
        return Ok(current);
    }
    let org = current.id;
    let now = svc.now();
    let mut am: organizations::ActiveModel = current.into();
    am.plan_key = Set(target.key.clone());
    let updated = am.update(&**tx).await?;
    let event_type = if target.rank > previous.rank {
        "subscription.upgraded"
    } else {
        "subscription.downgraded"
    };
    let mut data = json!({
        "organization_id": org.to_string(),
        "from_plan": previous.key,
        "to_plan": target.key,
        "changed_by": by.id,
    });
    if let Some(e) = &by.stripe_event {
        data["stripe_event_id"] = json!(e);
    }
    outbox::record(
        tx,
        now,
        Event {
            org,
            kind: ActivityType::PlanChanged,
            actor: by.actor.clone(),
            resource: None,
            summary: format!(
                "{} moved {} from {} to {}",
                by.name, updated.name, previous.name, target.name
            ),
            data: json!({ "fromPlan": previous.key, "toPlan": target.key, "changedBy": by.id }),
            webhook: Some(WebhookEvent { event_type, data }),
        },
    )
    .await?;
    entitlements::alert_all(tx, svc, &updated).await?;
    Ok(updated)
}

/// An organization's billing: its plan and period, and the provider subscription paying for
/// it, if one is attached.
#[derive(Clone, Debug)]
pub struct Billing {
    /// The plan it is on.
    pub plan: Plan,
    /// The current period of periodic limits.
    pub period: (DateTime<Utc>, DateTime<Utc>),
    /// The attached subscription (not ended), the one paying for the best plan first.
    pub subscription: Option<subscriptions::Model>,
}

/// The billing of an organization as `view`'s caller sees it: its admins and owners, and the
/// platform side (staff, API keys); PERMISSION_DENIED for members.
pub async fn billing_of(
    db: &impl ConnectionTrait,
    svc: &Services,
    view: &OrgView,
) -> DomainResult<Billing> {
    if view.role.is_some_and(|r| r < Role::Admin) {
        return Err(DomainError::PermissionDenied(
            "Only admins and owners see billing.".into(),
        ));
    }
    let org = &view.org;
    let subs = attached_in_org(org.id).all(db).await?;
    let rank = |s: &subscriptions::Model| {
        let prices = price_ids(s);
        let paying = s.status.is_some_and(grants_plan);
        let plan = svc
            .plans
            .plan_for_prices(prices.iter().map(String::as_str))
            .map_or(i32::MIN, |p| p.rank);
        (paying, plan, s.updated_at)
    };
    let subscription = subs.into_iter().max_by_key(rank);
    Ok(Billing {
        plan: entitlements::plan_of(&svc.plans, org).clone(),
        period: entitlements::period(org.billing_anchor, svc.now()),
        subscription,
    })
}
