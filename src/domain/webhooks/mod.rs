//! Webhook endpoints and their deliveries: who may manage which endpoint, what a valid
//! endpoint is, secret rotation, test sends and redelivery. Sending lives in
//! `crate::webhooks` (the dispatcher); this module only writes rows in one transaction.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, Order,
    QueryFilter, QueryOrder, Select,
};
use serde_json::json;

use super::{
    access::{Caller, Scope},
    ids::{OrgId, WebhookEndpointId},
    orgs::{self, Role},
    tenancy, DomainError, DomainResult, Services,
};
use crate::{db::Tx, egress};
use entity::{organizations, webhook_deliveries as deliveries, webhook_endpoints as endpoints};

mod keys;
mod log;

pub use keys::*;
pub use log::*;

/// The `webhook-id` of a message, as the outbox assigns it (stable across retries).
pub use crate::outbox::message_id;

/// Every event type a webhook can carry (the contract's list).
pub const EVENT_TYPES: [&str; 9] = [
    "invitation.sent",
    "invitation.accepted",
    "referral.signup",
    "subscription.upgraded",
    "subscription.downgraded",
    "usage.limit_reached",
    "user.activated",
    "webhook.test",
    "growth.weekly",
];
/// Longest endpoint URL.
pub const MAX_URL: usize = 2000;
/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 500;
/// Most rotated secrets that keep signing beside the current one.
pub const MAX_OLD_SECRETS: usize = 10;
/// Longest grace period of a rotated secret.
pub const MAX_GRACE_SECONDS: i64 = 30 * 24 * 3600;
/// Default grace period of a rotated secret.
pub const DEFAULT_GRACE_SECONDS: i64 = 24 * 3600;

pub use entity::enums::DeliveryStatus;

/// Tenant-scoped query: the endpoints of one organization.
pub fn endpoints_in_org(org: OrgId) -> Select<endpoints::Entity> {
    super::tenancy::in_org(org)
}

/// The platform endpoints (staff-managed, receiving every organization's events).
pub fn platform_endpoints() -> Select<endpoints::Entity> {
    endpoints::Entity::find().filter(endpoints::Column::OrganizationId.is_null())
}

/// Scoped query: the deliveries of one endpoint (callers checked access to it).
pub fn deliveries_of(endpoint: WebhookEndpointId) -> Select<deliveries::Entity> {
    deliveries::Entity::find().filter(deliveries::Column::EndpointId.eq(endpoint.0))
}

/// The event types an endpoint subscribes to (empty = all). A stored filter that is not a
/// JSON array of strings is an error: read as "all" it would send the endpoint events it
/// never asked for.
pub fn event_types(e: &endpoints::Model) -> DomainResult<Vec<String>> {
    serde_json::from_value(e.event_types.clone()).map_err(|err| {
        DomainError::Internal(anyhow::anyhow!(
            "webhook endpoint {} has a malformed event-type filter: {err}",
            e.id
        ))
    })
}

/// Whether an endpoint wants messages of `event_type` (an error when its filter is
/// malformed, see [`event_types`]).
pub fn wants(e: &endpoints::Model, event_type: &str) -> DomainResult<bool> {
    let types = event_types(e)?;
    Ok(types.is_empty() || types.iter().any(|t| t == event_type))
}

/// Validates an endpoint URL: http(s) with a host, https unless `KFACTOR_WEBHOOK_ALLOW_HTTP`,
/// and (unless `KFACTOR_WEBHOOK_ALLOW_PRIVATE`) not a literal non-public address. Names are
/// checked again on the resolved address at every connect.
pub fn parse_url(svc: &Services, raw: &str, field: &[&str]) -> DomainResult<String> {
    let raw = raw.trim();
    let bad = |m: &str| Err(DomainError::invalid(field, m));
    if raw.len() > MAX_URL {
        return bad("A webhook URL can be at most 2000 characters long.");
    }
    let Ok(url) = reqwest::Url::parse(raw) else {
        return bad("Enter a full URL like https://example.com/webhooks.");
    };
    match url.scheme() {
        "https" => {}
        "http" if svc.config.webhook_allow_http => {}
        "http" => return bad("Webhook URLs must use https."),
        _ => return bad("Enter a full URL like https://example.com/webhooks."),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return bad("Webhook URLs cannot contain a user name or password.");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return bad("Enter a full URL like https://example.com/webhooks.");
    }
    if !svc.config.webhook_allow_private && egress::literal(&url).is_some() {
        return bad(&format!(
            "{}. Webhook URLs must point to a public address.",
            egress::REFUSED
        ));
    }
    Ok(url.to_string())
}

/// Validates an event-type filter: known types, no duplicates (order kept).
pub fn parse_event_types(raw: &[String], field: &[&str]) -> DomainResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let t = t.trim();
        if !EVENT_TYPES.contains(&t) {
            let mut f: Vec<&str> = field.to_vec();
            let idx = i.to_string();
            f.push(&idx);
            return Err(DomainError::invalid(
                &f,
                format!(
                    "Unknown event type {t:?}. Known types: {}.",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

fn parse_description(raw: Option<&str>, field: &[&str]) -> DomainResult<Option<String>> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(d) if d.chars().count() > MAX_DESCRIPTION || d.chars().any(char::is_control) => {
            Err(DomainError::invalid(
                field,
                format!("A description has at most {MAX_DESCRIPTION} characters."),
            ))
        }
        Some(d) => Ok(Some(d.to_string())),
    }
}

/// The caller's right to manage an endpoint: an org endpoint needs ADMIN or OWNER there (or
/// an API key with `webhooks:write`), a platform endpoint needs staff. Anyone else is told it
/// does not exist.
async fn manageable(
    db: &impl ConnectionTrait,
    caller: Caller<'_>,
    id: WebhookEndpointId,
) -> DomainResult<endpoints::Model> {
    let not_found = DomainError::NotFound("Webhook endpoint");
    let q = match caller {
        Caller::User(u) => tenancy::endpoint_for_user(u.id, caller.is_staff(), id),
        Caller::Key(_) => endpoints::Entity::find_by_id(id.0),
    };
    let e = q
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("Webhook endpoint"))?;
    match (e.organization_id, caller) {
        (Some(_), Caller::Key(k)) => k.require(Scope::WebhooksWrite)?,
        (Some(org), Caller::User(u)) => {
            let access = match orgs::access(db, u.id, org).await {
                Ok(a) => a,
                Err(DomainError::Forbidden | DomainError::NotFound(_)) => return Err(not_found),
                Err(err) => return Err(err),
            };
            access.require(Role::Admin, "manage webhooks")?;
        }
        (None, c) if c.is_staff() => {}
        (None, _) => return Err(not_found),
    }
    Ok(e)
}

/// The organization whose endpoints the caller manages: ADMIN or OWNER there, or an API key
/// with `webhooks:write`.
async fn managed_org(
    db: &impl ConnectionTrait,
    caller: Caller<'_>,
    org: OrgId,
    what: &str,
) -> DomainResult<organizations::Model> {
    match caller {
        Caller::Key(k) => {
            k.require(Scope::WebhooksWrite)?;
            organizations::Entity::find_by_id(org.0)
                .one(db)
                .await?
                .ok_or(DomainError::NotFound("Organization"))
        }
        Caller::User(u) => {
            let access = orgs::access(db, u.id, org).await?;
            access.require(Role::Admin, what)?;
            Ok(access.org)
        }
    }
}

/// An endpoint the caller may see (same rule as managing it).
pub async fn get(
    db: &impl ConnectionTrait,
    caller: Caller<'_>,
    id: WebhookEndpointId,
) -> DomainResult<endpoints::Model> {
    manageable(db, caller, id).await
}

/// The endpoints of an organization (ADMIN and OWNER, or a key with `webhooks:write`).
pub async fn list_for_org(
    db: &impl ConnectionTrait,
    caller: Caller<'_>,
    org: OrgId,
) -> DomainResult<Vec<endpoints::Model>> {
    managed_org(db, caller, org, "see webhooks").await?;
    Ok(endpoints_in_org(org)
        .order_by(endpoints::Column::Id, Order::Asc)
        .all(db)
        .await?)
}

/// The platform endpoints (staff).
pub async fn list_platform(
    db: &impl ConnectionTrait,
    caller: Caller<'_>,
) -> DomainResult<Vec<endpoints::Model>> {
    if !caller.is_staff() {
        return Err(DomainError::PermissionDenied(
            "Only staff can see platform webhooks.".into(),
        ));
    }
    Ok(platform_endpoints()
        .order_by(endpoints::Column::Id, Order::Asc)
        .all(db)
        .await?)
}

/// What a new endpoint should be.
pub struct NewEndpoint<'a> {
    /// The organization, or None for a platform endpoint (staff only).
    pub org: Option<OrgId>,
    /// Where to send.
    pub url: &'a str,
    /// Event types to receive; empty = all.
    pub event_types: &'a [String],
    /// A note for humans.
    pub description: Option<&'a str>,
}

/// Creates an endpoint with a fresh secret; returns it with the secret's text form (shown
/// this once).
pub async fn create(
    svc: &Services,
    caller: Caller<'_>,
    new: NewEndpoint<'_>,
) -> DomainResult<(endpoints::Model, String)> {
    let url = parse_url(svc, new.url, &["input", "url"])?;
    let types = parse_event_types(new.event_types, &["input", "eventTypes"])?;
    let description = parse_description(new.description, &["input", "description"])?;
    let now = svc.now();
    let tx = Tx::begin(&svc.db).await?;
    match new.org {
        Some(org) => {
            let org = managed_org(&*tx, caller, org, "manage webhooks").await?;
            // Creating needs the plan feature; existing endpoints keep delivering after a
            // downgrade.
            super::entitlements::require(&*tx, svc, &org, "webhooks").await?;
        }
        None if caller.is_staff() => {}
        None => {
            return Err(DomainError::PermissionDenied(
                "Only staff can create platform webhooks.".into(),
            ))
        }
    }
    let e = endpoints::ActiveModel {
        id: Set(WebhookEndpointId::generate()),
        organization_id: Set(new.org),
        url: Set(url),
        description: Set(description),
        event_types: Set(json!(types)),
        enabled: Set(true),
        disabled_reason: Set(None),
        failing_since: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&*tx)
    .await?;
    let secret = add_secret(svc, &tx, e.id, now).await?;
    tx.commit(&svc.bus).await?;
    Ok((e, secret))
}

/// Changes to an endpoint; None leaves a field as it is.
#[derive(Default)]
pub struct EndpointChanges<'a> {
    /// New URL.
    pub url: Option<&'a str>,
    /// New filter.
    pub event_types: Option<&'a [String]>,
    /// Enable (clears `disabledReason`) or disable.
    pub enabled: Option<bool>,
    /// New description ("" clears it).
    pub description: Option<&'a str>,
}

/// Updates an endpoint.
pub async fn update(
    svc: &Services,
    caller: Caller<'_>,
    id: WebhookEndpointId,
    changes: EndpointChanges<'_>,
) -> DomainResult<endpoints::Model> {
    let url = changes
        .url
        .map(|u| parse_url(svc, u, &["url"]))
        .transpose()?;
    let types = changes
        .event_types
        .map(|t| parse_event_types(t, &["eventTypes"]))
        .transpose()?;
    let description = changes
        .description
        .map(|d| parse_description(Some(d), &["description"]))
        .transpose()?;
    let now = svc.now();
    let mut tx = Tx::begin(&svc.db).await?;
    let e = manageable(&*tx, caller, id).await?;
    let mut am: endpoints::ActiveModel = e.clone().into();
    if let Some(u) = url {
        am.url = Set(u);
    }
    if let Some(t) = types {
        am.event_types = Set(json!(t));
    }
    if let Some(d) = description {
        am.description = Set(d);
    }
    match changes.enabled {
        Some(true) if !e.enabled => {
            am.enabled = Set(true);
            am.disabled_reason = Set(None);
            am.failing_since = Set(None);
            // Deliveries that waited while it was disabled go out now.
            tx.queued_webhook();
        }
        Some(false) if e.enabled => {
            am.enabled = Set(false);
            am.disabled_reason = Set(Some(format!("Disabled by {}.", caller.display_name())));
        }
        _ => {}
    }
    am.updated_at = Set(now);
    let e = am.update(&*tx).await?;
    tx.commit(&svc.bus).await?;
    Ok(e)
}

/// Deletes an endpoint with its secrets, deliveries and attempts.
pub async fn delete(
    svc: &Services,
    caller: Caller<'_>,
    id: WebhookEndpointId,
) -> DomainResult<WebhookEndpointId> {
    let tx = Tx::begin(&svc.db).await?;
    let e = manageable(&*tx, caller, id).await?;
    endpoints::Entity::delete_by_id(e.id).exec(&*tx).await?;
    tx.commit(&svc.bus).await?;
    Ok(id)
}
