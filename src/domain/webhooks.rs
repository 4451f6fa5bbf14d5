//! Webhook endpoints and their deliveries: who may manage which endpoint, what a valid
//! endpoint is, secret rotation, test sends and redelivery. Sending lives in
//! `crate::webhooks` (the dispatcher); this module only writes rows in one transaction.
use entity::ids::{WebhookMessageId, WebhookSecretId};
use std::collections::HashMap;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait,
    Order, QueryFilter, QueryOrder, Select,
};
use serde_json::json;

use super::{
    access::{Caller, Scope},
    ids::{OrgId, WebhookDeliveryId, WebhookEndpointId},
    orgs::{self, Role},
    page::{self, Page, PageRequest},
    tenancy, DomainError, DomainResult, Services,
};
use crate::{
    crypto::{signing, Purpose as SealPurpose},
    db::Tx,
    egress,
};
use entity::{
    organizations, webhook_attempts as attempts, webhook_deliveries as deliveries,
    webhook_endpoints as endpoints, webhook_messages as messages, webhook_secrets as secrets,
};

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

/// The keys that sign deliveries to each of `endpoints` now: the current one first, then
/// each unexpired old one, newest first.
pub async fn signing_keys(
    svc: &Services,
    db: &impl ConnectionTrait,
    endpoints: impl IntoIterator<Item = WebhookEndpointId>,
    now: DateTime<Utc>,
) -> DomainResult<HashMap<WebhookEndpointId, Vec<signing::SigningKey>>> {
    let rows = secrets::Entity::find()
        .filter(secrets::Column::EndpointId.is_in(endpoints))
        .filter(
            sea_orm::Condition::any()
                .add(secrets::Column::ExpiresAt.is_null())
                .add(secrets::Column::ExpiresAt.gt(now)),
        )
        // The current secret (no expiry) first, then the old ones, newest first.
        .order_by(secrets::Column::ExpiresAt.is_null(), Order::Desc)
        .order_by(secrets::Column::Id, Order::Desc)
        .all(db)
        .await?;
    let mut keys: HashMap<WebhookEndpointId, Vec<signing::SigningKey>> = HashMap::new();
    for r in rows {
        // A secret that does not open is an error, never a key: signing with garbage would
        // send deliveries no receiver can verify. Start-up refuses such a database, so this
        // only fires when the data changed under a running server.
        let opened = svc
            .keys
            .ring()
            .open(SealPurpose::WebhookSecret, r.id.as_bytes(), &r.ciphertext)
            .map_err(|e| anyhow::anyhow!("webhook secret {} does not open: {e}", r.id))?;
        keys.entry(r.endpoint_id)
            .or_default()
            .push(signing::SigningKey::from_bytes(opened.plaintext));
    }
    Ok(keys)
}

async fn add_secret(
    svc: &Services,
    tx: &Tx,
    endpoint: WebhookEndpointId,
    now: DateTime<Utc>,
) -> DomainResult<String> {
    let key = signing::SigningKey::generate();
    let id = WebhookSecretId::generate();
    secrets::ActiveModel {
        id: Set(id),
        endpoint_id: Set(endpoint),
        ciphertext: Set(svc.keys.ring().seal(
            SealPurpose::WebhookSecret,
            id.as_bytes(),
            key.bytes(),
        )),
        created_at: Set(now),
        expires_at: Set(None),
    }
    .insert(&**tx)
    .await?;
    Ok(key.reveal())
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

/// Replaces the current secret. The old one keeps signing (a second signature) until
/// `grace_seconds` from now; at most [`MAX_OLD_SECRETS`] old secrets are kept.
pub async fn rotate_secret(
    svc: &Services,
    caller: Caller<'_>,
    id: WebhookEndpointId,
    grace_seconds: i64,
) -> DomainResult<(endpoints::Model, String)> {
    if !(0..=MAX_GRACE_SECONDS).contains(&grace_seconds) {
        return Err(DomainError::invalid(
            &["expireOldAfterSeconds"],
            format!("Keep the old secret for 0 to {MAX_GRACE_SECONDS} seconds."),
        ));
    }
    let now = svc.now();
    let tx = Tx::begin(&svc.db).await?;
    let e = manageable(&*tx, caller, id).await?;
    secrets::Entity::update_many()
        .col_expr(
            secrets::Column::ExpiresAt,
            Expr::value(now + Duration::seconds(grace_seconds)),
        )
        .filter(secrets::Column::EndpointId.eq(e.id))
        .filter(secrets::Column::ExpiresAt.is_null())
        .exec(&*tx)
        .await?;
    // Expired secrets sign nothing any more; beyond the newest ten, old ones go too.
    let old = secrets::Entity::find()
        .filter(secrets::Column::EndpointId.eq(e.id))
        .filter(secrets::Column::ExpiresAt.is_not_null())
        .order_by(secrets::Column::Id, Order::Desc)
        .all(&*tx)
        .await?;
    let drop: Vec<WebhookSecretId> = old
        .iter()
        .enumerate()
        .filter(|(i, s)| *i >= MAX_OLD_SECRETS || s.expires_at.is_some_and(|x| x <= now))
        .map(|(_, s)| s.id)
        .collect();
    if !drop.is_empty() {
        secrets::Entity::delete_many()
            .filter(secrets::Column::Id.is_in(drop))
            .exec(&*tx)
            .await?;
    }
    let secret = add_secret(svc, &tx, e.id, now).await?;
    tx.commit(&svc.bus).await?;
    Ok((e, secret))
}

/// A delivery with its message.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The delivery row.
    pub delivery: deliveries::Model,
    /// The message it carries.
    pub message: messages::Model,
}

/// Sends `webhook.test {endpoint_id}` to one endpoint (and no other).
pub async fn send_test(
    svc: &Services,
    caller: Caller<'_>,
    id: WebhookEndpointId,
) -> DomainResult<Delivery> {
    let now = svc.now();
    let mut tx = Tx::begin(&svc.db).await?;
    let e = manageable(&*tx, caller, id).await?;
    if !e.enabled {
        return Err(DomainError::invalid(
            &["endpointId"],
            "This endpoint is disabled. Enable it first.",
        ));
    }
    let payload = json!({
        "type": "webhook.test",
        "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": { "endpoint_id": id.to_string() },
    });
    // Already dispatched: the fan-out must not send it to other endpoints.
    let message = messages::ActiveModel {
        id: Set(WebhookMessageId::generate()),
        organization_id: Set(e.organization_id),
        event_type: Set("webhook.test".into()),
        payload: Set(payload),
        created_at: Set(now),
        dispatched_at: Set(Some(now)),
    }
    .insert(&*tx)
    .await?;
    let delivery = new_delivery(e.id, message.id, now).insert(&*tx).await?;
    tx.queued_webhook();
    tx.commit(&svc.bus).await?;
    Ok(Delivery { delivery, message })
}

/// A pending delivery of `message` to `endpoint`, due now.
pub fn new_delivery(
    endpoint: WebhookEndpointId,
    message: WebhookMessageId,
    now: DateTime<Utc>,
) -> deliveries::ActiveModel {
    deliveries::ActiveModel {
        id: Set(WebhookDeliveryId::generate()),
        endpoint_id: Set(endpoint),
        message_id: Set(message),
        status: Set(DeliveryStatus::Pending),
        attempts: Set(0),
        next_attempt_at: Set(Some(now)),
        locked_until: Set(None),
        lease_id: Set(None),
        manual: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// Sends a delivery again now, as a manual attempt with the same `webhook-id`. A failed
/// manual attempt does not restart the retry schedule.
pub async fn redeliver(
    svc: &Services,
    caller: Caller<'_>,
    id: WebhookDeliveryId,
) -> DomainResult<Delivery> {
    let now = svc.now();
    let mut tx = Tx::begin(&svc.db).await?;
    let q = match caller {
        Caller::User(u) => tenancy::delivery_for_user(u.id, caller.is_staff(), id),
        Caller::Key(_) => deliveries::Entity::find_by_id(id.0),
    };
    let d = q
        .one(&*tx)
        .await?
        .ok_or(DomainError::NotFound("Webhook delivery"))?;
    let e = match manageable(&*tx, caller, d.endpoint_id).await {
        Err(DomainError::NotFound(_)) => return Err(DomainError::NotFound("Webhook delivery")),
        other => other?,
    };
    if !e.enabled {
        return Err(DomainError::invalid(
            &["deliveryId"],
            "This endpoint is disabled. Enable it first.",
        ));
    }
    let mut am: deliveries::ActiveModel = d.into();
    am.status = Set(DeliveryStatus::Pending);
    am.next_attempt_at = Set(Some(now));
    am.manual = Set(true);
    // An attempt in flight no longer owns the delivery: it is logged when it finishes, but
    // this redelivery is what happens next.
    am.locked_until = Set(None);
    am.lease_id = Set(None);
    am.updated_at = Set(now);
    let delivery = am.update(&*tx).await?;
    let message = messages::Entity::find_by_id(delivery.message_id)
        .one(&*tx)
        .await?
        .ok_or_else(|| anyhow::anyhow!("message of delivery {} is gone", delivery.id))?;
    tx.queued_webhook();
    tx.commit(&svc.bus).await?;
    Ok(Delivery { delivery, message })
}

/// One page of an endpoint's deliveries, newest first.
pub async fn deliveries(
    db: &impl ConnectionTrait,
    endpoint: WebhookEndpointId,
    status: Option<DeliveryStatus>,
    req: PageRequest,
) -> DomainResult<Page<Delivery>> {
    let mut q = deliveries_of(endpoint);
    if let Some(s) = status {
        q = q.filter(deliveries::Column::Status.eq(s));
    }
    let page = page::fetch(db, q, deliveries::Column::Id, Order::Desc, req).await?;
    let ids: Vec<WebhookMessageId> = page.items.iter().map(|d| d.message_id).collect();
    let msgs: std::collections::HashMap<WebhookMessageId, messages::Model> =
        messages::Entity::find()
            .filter(messages::Column::Id.is_in(ids))
            .all(db)
            .await?
            .into_iter()
            .map(|m| (m.id, m))
            .collect();
    let mut items = Vec::with_capacity(page.items.len());
    for d in page.items {
        let message = msgs
            .get(&d.message_id)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("message of delivery {} is gone", d.id))?;
        items.push(Delivery {
            delivery: d,
            message,
        });
    }
    Ok(Page {
        items,
        has_next: page.has_next,
        total: page.total,
    })
}

/// The attempts of a delivery, oldest first.
pub async fn attempts_of(
    db: &impl ConnectionTrait,
    delivery: WebhookDeliveryId,
) -> DomainResult<Vec<attempts::Model>> {
    Ok(attempts::Entity::find()
        .filter(attempts::Column::DeliveryId.eq(delivery.0))
        .order_by(attempts::Column::Id, Order::Asc)
        .all(db)
        .await?)
}
