//! Stripe's billing events, applied exactly once and in order.
//!
//! - `checkout.session.completed` ties the Stripe subscription (and its customer) to the
//!   organization named by `client_reference_id`, or else `metadata.organization_id`.
//! - `customer.subscription.created|updated|deleted` carry the subscription's state; its
//!   items' prices map to a plan through `plans.toml` (`stripe_price_ids`). The plan always
//!   comes from these events: an organization is on the best plan its paying subscriptions
//!   buy (`active`, `trialing`, `past_due`), or on the default plan once none is left.
//!
//! Stripe delivers at least once and in no particular order (a subscription's own events
//! usually arrive *before* the checkout that names its organization), so:
//! - every event id is recorded in the transaction that applies it; a retry or replay
//!   changes nothing;
//! - a subscription row keeps the `created` of the event it reflects; an older event is
//!   ignored, a `created` event never overwrites a later one of the same second, and a
//!   deleted (canceled) subscription stays deleted;
//! - a subscription whose organization is not known yet is kept, and applied when the
//!   checkout arrives.
//!
//! Unknown prices and organizations are logged and change nothing; they are answered like
//! any handled event, because Stripe would retry an error for days.
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    sea_query::{Expr, OnConflict},
    ActiveEnum, ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, EntityTrait, QueryFilter, QuerySelect,
};
use serde::Deserialize;
use serde_json::json;

use super::{apply_plan, grants_plan, lock_org, price_ids, subscriptions_in_org, ChangedBy};
use crate::{
    db::Tx,
    domain::{ids::OrgId, DomainResult, Services},
};
use entity::{
    organizations,
    stripe_events::{self as events, EventOutcome},
    stripe_subscriptions::{self as subscriptions, SubscriptionStatus},
};

/// How long applied event ids are remembered (Stripe retries for 3 days and lets operators
/// resend events for 30).
const REMEMBER_EVENTS: Duration = Duration::days(90);

/// A Stripe event, as far as kfactor reads it.
#[derive(Debug, Deserialize)]
pub struct Event {
    /// `evt_…`.
    pub id: String,
    /// e.g. `customer.subscription.updated`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When Stripe created the event (unix seconds).
    pub created: i64,
    /// The object the event is about.
    pub data: EventData,
}

/// `data` of an event.
#[derive(Debug, Deserialize)]
pub struct EventData {
    /// The checkout session or subscription, as it was when the event happened.
    pub object: serde_json::Value,
}

/// Parses a (verified) event body.
pub fn parse_event(body: &[u8]) -> Result<Event, String> {
    let e: Event = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if e.id.is_empty() || e.id.len() > 255 {
        return Err("the event id must have 1 to 255 characters".into());
    }
    Ok(e)
}

/// What handling an event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Its facts were stored, and the plan changed if it had to.
    Applied,
    /// The event id was handled before; nothing changed.
    Duplicate,
    /// A newer event about the same subscription was applied before; nothing changed.
    Stale,
    /// An unknown price or organization, or nothing kfactor acts on; logged, nothing changed.
    Ignored,
    /// An event type kfactor does not handle.
    Unhandled,
}

impl Outcome {
    /// The name in responses and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Duplicate => "duplicate",
            Outcome::Stale => "stale",
            Outcome::Ignored => "ignored",
            Outcome::Unhandled => "unhandled",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    CheckoutCompleted,
    SubscriptionCreated,
    SubscriptionUpdated,
    SubscriptionDeleted,
}

impl Kind {
    fn of(event_type: &str) -> Option<Kind> {
        Some(match event_type {
            "checkout.session.completed" => Kind::CheckoutCompleted,
            "customer.subscription.created" => Kind::SubscriptionCreated,
            "customer.subscription.updated" => Kind::SubscriptionUpdated,
            "customer.subscription.deleted" => Kind::SubscriptionDeleted,
            _ => return None,
        })
    }
}

/// A Stripe reference that may come expanded (`{"id": …}`) or as a bare id.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Expandable {
    Id(String),
    Object { id: String },
}

impl Expandable {
    fn id(&self) -> &str {
        match self {
            Expandable::Id(id) | Expandable::Object { id } => id,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct Metadata {
    organization_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CheckoutSession {
    client_reference_id: Option<String>,
    metadata: Option<Metadata>,
    customer: Option<Expandable>,
    subscription: Option<Expandable>,
}

#[derive(Debug, Deserialize)]
struct Subscription {
    id: String,
    customer: Expandable,
    status: String,
    #[serde(default)]
    cancel_at_period_end: bool,
    current_period_end: Option<i64>,
    #[serde(default)]
    items: Items,
    metadata: Option<Metadata>,
}

#[derive(Debug, Default, Deserialize)]
struct Items {
    #[serde(default)]
    data: Vec<Item>,
}

#[derive(Debug, Deserialize)]
struct Item {
    price: Expandable,
    /// Where API versions from 2025 put the period.
    current_period_end: Option<i64>,
}

fn ignored(event: &Event, reason: &str) -> Outcome {
    tracing::warn!(event = %event.id, event_type = %event.kind, reason, "Stripe event changes nothing");
    Outcome::Ignored
}

/// Applies a verified event in one transaction: recording its id, updating the subscription
/// and, through the same function as `changePlan`, the organization's plan (with its
/// activity and webhooks).
pub async fn apply(svc: &Services, event: &Event) -> DomainResult<Outcome> {
    let Some(kind) = Kind::of(&event.kind) else {
        return Ok(Outcome::Unhandled);
    };
    let Some(created) = DateTime::from_timestamp(event.created, 0) else {
        return Ok(ignored(event, "`created` is not a time"));
    };
    let now = svc.now();
    let mut tx = Tx::begin(&svc.db).await?;
    // First: a concurrent delivery of the same event waits here, then finds it recorded.
    let first = events::Entity::insert(events::ActiveModel {
        id: Set(event.id.clone()),
        event_type: Set(event.kind.clone()),
        created: Set(created),
        received_at: Set(now),
        outcome: Set(EventOutcome::Applied),
    })
    .on_conflict(
        OnConflict::column(events::Column::Id)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&*tx)
    .await?;
    if first == 0 {
        return Ok(Outcome::Duplicate);
    }
    events::Entity::delete_many()
        .filter(events::Column::ReceivedAt.lt(now - REMEMBER_EVENTS))
        .exec(&*tx)
        .await?;
    let outcome = match kind {
        Kind::CheckoutCompleted => checkout_completed(&mut tx, svc, event).await?,
        _ => subscription_changed(&mut tx, svc, event, kind, created).await?,
    };
    let stored = match outcome {
        Outcome::Stale => Some(EventOutcome::Stale),
        Outcome::Ignored => Some(EventOutcome::Ignored),
        _ => None,
    };
    if let Some(o) = stored {
        events::Entity::update_many()
            .col_expr(events::Column::Outcome, Expr::value(o.to_value()))
            .filter(events::Column::Id.eq(event.id.as_str()))
            .exec(&*tx)
            .await?;
    }
    tx.commit(&svc.bus).await?;
    Ok(outcome)
}

/// The subscription's row, created empty if this is the first event naming it, and locked.
/// Subscription rows are locked before organization rows, on every path, so two events
/// about one subscription never deadlock.
async fn lock_subscription(
    tx: &Tx,
    id: &str,
    customer: &str,
    now: DateTime<Utc>,
) -> DomainResult<subscriptions::Model> {
    subscriptions::Entity::insert(subscriptions::ActiveModel {
        id: Set(id.to_string()),
        customer_id: Set(customer.to_string()),
        organization_id: Set(None),
        status: Set(None),
        price_ids: Set(json!([])),
        cancel_at_period_end: Set(false),
        current_period_end: Set(None),
        event_created: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(subscriptions::Column::Id)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&**tx)
    .await?;
    Ok(subscriptions::Entity::find_by_id(id.to_string())
        .lock_exclusive()
        .one(&**tx)
        .await?
        .ok_or_else(|| anyhow::anyhow!("subscription {id} vanished"))?)
}

/// The organization an event names, if it exists (a purged one counts as existing: see
/// [`purged`]).
async fn named_org(tx: &Tx, reference: Option<&str>) -> DomainResult<Option<OrgId>> {
    let Some(org) = reference.and_then(|r| OrgId::parse(r.trim()).ok()) else {
        return Ok(None);
    };
    let found = organizations::Entity::find_by_id(org.0).one(&**tx).await?;
    Ok(found.map(|o| o.id))
}

/// Whether the organization was purged (deleted for good). Its billing events change
/// nothing: its plan, subscription rows and webhooks stay as they were when it went.
async fn purged(tx: &Tx, org: OrgId) -> DomainResult<bool> {
    Ok(organizations::Entity::find_by_id(org.0)
        .filter(organizations::Column::DeletedAt.is_not_null())
        .one(&**tx)
        .await?
        .is_some())
}

async fn checkout_completed(tx: &mut Tx, svc: &Services, event: &Event) -> DomainResult<Outcome> {
    let Ok(session) = serde_json::from_value::<CheckoutSession>(event.data.object.clone()) else {
        return Ok(ignored(event, "the checkout session is not readable"));
    };
    let (Some(subscription), Some(customer)) = (&session.subscription, &session.customer) else {
        return Ok(ignored(event, "not a subscription checkout"));
    };
    let reference = session.client_reference_id.as_deref().or(session
        .metadata
        .as_ref()
        .and_then(|m| m.organization_id.as_deref()));
    let Some(org) = named_org(tx, reference).await? else {
        return Ok(ignored(
            event,
            "client_reference_id / metadata.organization_id names no organization",
        ));
    };
    if purged(tx, org).await? {
        return Ok(ignored(event, "the organization was deleted"));
    }
    let row = lock_subscription(tx, subscription.id(), customer.id(), svc.now()).await?;
    if row.organization_id.is_some_and(|o| o != org) {
        return Ok(ignored(
            event,
            "the subscription already belongs to another organization",
        ));
    }
    let mut am: subscriptions::ActiveModel = row.into();
    am.organization_id = Set(Some(org));
    am.updated_at = Set(svc.now());
    am.update(&**tx).await?;
    sync_plan(tx, svc, org, event).await?;
    Ok(Outcome::Applied)
}

async fn subscription_changed(
    tx: &mut Tx,
    svc: &Services,
    event: &Event,
    kind: Kind,
    created: DateTime<Utc>,
) -> DomainResult<Outcome> {
    let Ok(sub) = serde_json::from_value::<Subscription>(event.data.object.clone()) else {
        return Ok(ignored(event, "the subscription is not readable"));
    };
    let status = match (kind, SubscriptionStatus::try_from_value(&sub.status)) {
        (Kind::SubscriptionDeleted, _) => SubscriptionStatus::Canceled,
        (_, Ok(s)) => s,
        (_, Err(_)) => return Ok(ignored(event, "unknown subscription status")),
    };
    let prices: Vec<String> = sub
        .items
        .data
        .iter()
        .map(|i| i.price.id().to_string())
        .collect();
    if kind != Kind::SubscriptionDeleted
        && svc
            .plans
            .plan_for_prices(prices.iter().map(String::as_str))
            .is_none()
    {
        tracing::warn!(event = %event.id, subscription = %sub.id, ?prices,
            "no price of this subscription is mapped to a plan (stripe_price_ids in plans.toml)");
        return Ok(Outcome::Ignored);
    }
    let row = lock_subscription(tx, &sub.id, sub.customer.id(), svc.now()).await?;
    let stale = row.status == Some(SubscriptionStatus::Canceled)
        || row.event_created.is_some_and(|seen| {
            created < seen || (created == seen && kind == Kind::SubscriptionCreated)
        });
    if stale {
        return Ok(Outcome::Stale);
    }
    let org = match row.organization_id {
        Some(o) => Some(o),
        None => {
            let named = sub
                .metadata
                .as_ref()
                .and_then(|m| m.organization_id.as_deref());
            match named_org(tx, named).await? {
                Some(o) => Some(o),
                // The customer's earlier subscription tells which organization pays.
                None => subscriptions::Entity::find()
                    .filter(subscriptions::Column::CustomerId.eq(sub.customer.id()))
                    .filter(subscriptions::Column::OrganizationId.is_not_null())
                    .one(&**tx)
                    .await?
                    .and_then(|s| s.organization_id),
            }
        }
    };
    if let Some(o) = org {
        if purged(tx, o).await? {
            return Ok(ignored(event, "the organization was deleted"));
        }
    }
    let period_end = sub
        .current_period_end
        .or_else(|| sub.items.data.iter().find_map(|i| i.current_period_end))
        .and_then(|t| DateTime::from_timestamp(t, 0));
    let mut am: subscriptions::ActiveModel = row.into();
    am.customer_id = Set(sub.customer.id().to_string());
    am.organization_id = Set(org);
    am.status = Set(Some(status));
    am.price_ids = Set(json!(prices));
    am.cancel_at_period_end = Set(sub.cancel_at_period_end);
    am.current_period_end = Set(period_end);
    am.event_created = Set(Some(created));
    am.updated_at = Set(svc.now());
    am.update(&**tx).await?;
    match org {
        Some(org) => sync_plan(tx, svc, org, event).await?,
        None => tracing::info!(event = %event.id, subscription = %sub.id,
            "subscription of no known organization yet; kept until checkout.session.completed names one"),
    }
    Ok(Outcome::Applied)
}

/// Puts the organization on the best plan its paying subscriptions buy, or on the default
/// plan when none pays any more. An organization Stripe has told nothing about yet (its
/// subscription's state has not arrived) keeps its plan.
async fn sync_plan(tx: &mut Tx, svc: &Services, org: OrgId, event: &Event) -> DomainResult<()> {
    let Some(current) = lock_org(tx, org).await? else {
        return Ok(());
    };
    let subs = subscriptions_in_org(org)
        .filter(subscriptions::Column::Status.is_not_null())
        .all(&**tx)
        .await?;
    if subs.is_empty() {
        return Ok(());
    }
    let target = subs
        .iter()
        .filter(|s| s.status.is_some_and(grants_plan))
        .filter_map(|s| {
            let prices = price_ids(s);
            svc.plans
                .plan_for_prices(prices.iter().map(String::as_str))
                .cloned()
        })
        .max_by_key(|p| p.rank)
        .unwrap_or_else(|| svc.plans.default_plan().clone());
    apply_plan(tx, svc, current, &target, &ChangedBy::stripe(&event.id)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_expanded_and_bare_references() {
        let s: Subscription = serde_json::from_value(json!({
            "id": "sub_1", "customer": {"id": "cus_1", "object": "customer"}, "status": "active",
            "items": {"data": [{"price": {"id": "price_pro"}, "current_period_end": 1767225600}]},
            "metadata": {}
        }))
        .unwrap();
        assert_eq!(s.customer.id(), "cus_1");
        assert_eq!(s.items.data[0].price.id(), "price_pro");
        let c: CheckoutSession = serde_json::from_value(json!({
            "client_reference_id": null, "metadata": {"organization_id": "org_x"},
            "customer": "cus_1", "subscription": "sub_1", "mode": "subscription"
        }))
        .unwrap();
        assert_eq!(c.subscription.unwrap().id(), "sub_1");
        assert_eq!(
            c.metadata.unwrap().organization_id.as_deref(),
            Some("org_x")
        );
        assert!(parse_event(br#"{"id":"","type":"x","created":1,"data":{"object":{}}}"#).is_err());
    }
}
