//! The transactional outbox: activity events and webhook messages are written inside the
//! transaction of the change they describe, and announced only after it commits.
use std::ops::Deref;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, DatabaseTransaction, DbErr, EntityTrait, TransactionTrait,
};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{
    db::Db,
    domain::{activity::ActivityType, ids::OrgId},
    pubsub::{ActivityMessage, Bus, Revocation},
};

/// A write transaction that remembers what to announce once it has committed.
pub struct Tx {
    txn: DatabaseTransaction,
    activity: Vec<ActivityMessage>,
    webhooks: bool,
    emails: bool,
    /// Scopes whose access this transaction changes: their live streams check again.
    revoked: Vec<Revocation>,
    /// Changes to the growth rollups, written just before commit.
    rollup: crate::rollups::Rollup,
}

impl Deref for Tx {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl Tx {
    /// Starts a write transaction.
    pub async fn begin(db: &Db) -> Result<Tx, DbErr> {
        Ok(Tx {
            txn: db.write.begin().await?,
            activity: Vec::new(),
            webhooks: false,
            emails: false,
            revoked: Vec::new(),
            rollup: Default::default(),
        })
    }

    /// Commits, then wakes subscribers and the webhook dispatcher. Dropping a `Tx` without
    /// committing rolls it back and announces nothing.
    pub async fn commit(self, bus: &Bus) -> Result<(), DbErr> {
        crate::rollups::flush(&self.txn, &self.rollup).await?;
        bus.announce(&self.txn, &self.activity, self.webhooks, &self.revoked)
            .await?;
        self.txn.commit().await?;
        bus.bump_epoch();
        // Access changes first: a stream whose access ended delivers nothing committed after.
        bus.revoke(&self.revoked);
        bus.publish(self.activity);
        if self.webhooks {
            bus.wake_webhooks();
        }
        if self.emails {
            bus.wake_mailer();
        }
        Ok(())
    }

    /// Adds changes to the growth rollups, written with the facts at commit.
    pub fn add_rollup(&mut self, change: &crate::rollups::Rollup) {
        self.rollup.merge(change);
    }

    /// Notes that webhook deliveries were queued, so the dispatcher is woken after commit.
    pub fn queued_webhook(&mut self) {
        self.webhooks = true;
    }

    /// Notes that the access of `scope` changes (a session ends, a membership or a link
    /// changes): after commit, live streams authorized through it check again, here and on
    /// every instance.
    pub fn revoke(&mut self, scope: Revocation) {
        if !self.revoked.contains(&scope) {
            self.revoked.push(scope);
        }
    }

    /// Notes that an email was queued, so the mailer is woken after commit.
    pub fn queued_email(&mut self) {
        self.emails = true;
    }
}

/// Who caused an event.
#[derive(Clone, Debug, Default)]
pub struct Actor {
    /// A signed-in user.
    pub user_id: Option<Uuid>,
    /// A guest who came through a shared link.
    pub guest_name: Option<String>,
}

impl Actor {
    /// A user actor.
    pub fn user(id: impl Into<Uuid>) -> Actor {
        Actor {
            user_id: Some(id.into()),
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
        id: Set(Uuid::now_v7()),
        organization_id: Set(event.org.0),
        event_type: Set(event.kind.as_str().to_string()),
        actor_user_id: Set(event.actor.user_id),
        actor_guest_name: Set(event.actor.guest_name),
        resource_type: Set(event.resource.map(|(t, _)| t.to_string())),
        resource_id: Set(event.resource.map(|(_, id)| id)),
        summary: Set(event.summary),
        data: Set(event.data),
        created_at: Set(now),
    }
    .insert(&tx.txn)
    .await?;
    if let Some(w) = event.webhook {
        webhook(tx, now, Some(event.org), w).await?;
    }
    tx.activity.push(std::sync::Arc::new(row.clone()));
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
        id: Set(Uuid::now_v7()),
        organization_id: Set(org.map(|o| o.0)),
        event_type: Set(event.event_type.to_string()),
        payload: Set(payload),
        created_at: Set(now),
        dispatched_at: Set(None),
    }
    .insert(&tx.txn)
    .await?;
    tx.webhooks = true;
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
            id: Set(Uuid::now_v7()),
            organization_id: Set(org.map(|o| o.0)),
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
        .exec_without_returning(&tx.txn)
        .await?;
    tx.webhooks = true;
    Ok(())
}

/// The `webhook-id` of a message: stable across retries.
pub fn message_id(id: Uuid) -> String {
    format!("msg_{}", id.simple())
}
