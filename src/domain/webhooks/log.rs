//! Deliveries and their attempts: test sends, redelivery, and the delivery log.
use entity::ids::WebhookMessageId;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, Order,
    QueryFilter, QueryOrder,
};
use serde_json::json;

use super::*;
use crate::db::Tx;
use crate::domain::{
    access::Caller,
    ids::{WebhookDeliveryId, WebhookEndpointId},
    page::{self, Page, PageRequest},
    tenancy, DomainError, DomainResult, Services,
};
use entity::{
    webhook_attempts as attempts, webhook_deliveries as deliveries, webhook_messages as messages,
};

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
