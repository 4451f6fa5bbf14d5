//! The transactional outbox: what a change sets in motion (its activity event, webhook
//! messages, emails, share-link visits) is written inside the transaction of the change
//! itself, and announced only after it commits ([`Tx::commit`]).
//!
//! The outbox sits below the rules: it knows rows, not decisions, so it imports nothing of
//! `crate::domain`; the workers drain what it wrote.
use chrono::{DateTime, SecondsFormat, Utc};
use entity::ids::{ActivityId, OrgId, UserId, WebhookMessageId};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DbErr, EntityTrait};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{db::Tx, events::ActivityType};

pub mod email;
pub mod notifications;
pub mod visits;

/// Who caused an event.
#[derive(Clone, Debug, Default)]
pub struct Actor {
    /// A signed-in user.
    pub user_id: Option<UserId>,
    /// A guest who came through a shared link.
    pub guest_name: Option<String>,
}

impl Actor {
    /// A user actor.
    pub fn user(id: UserId) -> Actor {
        Actor {
            user_id: Some(id),
            guest_name: None,
        }
    }
}

/// One thing that happened in an organization.
#[derive(Clone, Debug)]
pub struct Event {
    /// The organization whose feed it belongs to.
    pub org: OrgId,
    /// What happened.
    pub kind: ActivityType,
    /// Who did it.
    pub actor: Actor,
    /// The resource it happened to, as (type, id).
    pub resource: Option<(&'static str, Uuid)>,
    /// One human sentence.
    pub summary: String,
    /// Machine-readable details.
    pub data: Value,
    /// The webhook message to send for it, if third parties care.
    pub webhook: Option<WebhookEvent>,
}

/// A webhook message: an event type of the contract and its `data`.
#[derive(Clone, Debug)]
pub struct WebhookEvent {
    /// e.g. `referral.signup`.
    pub event_type: &'static str,
    /// The `data` of the envelope.
    pub data: Value,
}

/// Records an activity event (and its webhook message, if any) in the transaction.
pub async fn record(
    tx: &mut Tx,
    now: DateTime<Utc>,
    event: Event,
) -> Result<entity::activity_events::Model, DbErr> {
    let row = entity::activity_events::ActiveModel {
        id: Set(ActivityId::generate()),
        organization_id: Set(event.org),
        event_type: Set(event.kind),
        actor_user_id: Set(event.actor.user_id),
        actor_guest_name: Set(event.actor.guest_name),
        resource_type: Set(event.resource.map(|(t, _)| t.to_string())),
        resource_id: Set(event.resource.map(|(_, id)| id)),
        summary: Set(event.summary),
        data: Set(event.data),
        created_at: Set(now),
    }
    .insert(&**tx)
    .await?;
    if let Some(w) = event.webhook {
        webhook(tx, now, Some(event.org), w).await?;
    }
    tx.queued_activity(std::sync::Arc::new(row.clone()));
    Ok(row)
}

/// Records a webhook message with no activity event of its own.
pub async fn webhook(
    tx: &mut Tx,
    now: DateTime<Utc>,
    org: Option<OrgId>,
    event: WebhookEvent,
) -> Result<entity::webhook_messages::Model, DbErr> {
    let payload = json!({
        "type": event.event_type,
        "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": event.data,
    });
    let row = entity::webhook_messages::ActiveModel {
        id: Set(WebhookMessageId::generate()),
        organization_id: Set(org),
        event_type: Set(event.event_type.to_string()),
        payload: Set(payload),
        created_at: Set(now),
        dispatched_at: Set(None),
    }
    .insert(&**tx)
    .await?;
    tx.queued_webhook();
    Ok(row)
}

/// Records many webhook messages with no activity event of their own, in one statement.
pub async fn webhooks(
    tx: &mut Tx,
    now: DateTime<Utc>,
    events: Vec<(Option<OrgId>, WebhookEvent)>,
) -> Result<(), DbErr> {
    if events.is_empty() {
        return Ok(());
    }
    let timestamp = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    let rows = events
        .into_iter()
        .map(|(org, event)| entity::webhook_messages::ActiveModel {
            id: Set(WebhookMessageId::generate()),
            organization_id: Set(org),
            event_type: Set(event.event_type.to_string()),
            payload: Set(json!({
                "type": event.event_type,
                "timestamp": timestamp,
                "data": event.data,
            })),
            created_at: Set(now),
            dispatched_at: Set(None),
        });
    entity::webhook_messages::Entity::insert_many(rows)
        .exec_without_returning(&**tx)
        .await?;
    tx.queued_webhook();
    Ok(())
}

/// The `webhook-id` of a message: stable across retries.
pub fn message_id(id: WebhookMessageId) -> String {
    id.to_string()
}
