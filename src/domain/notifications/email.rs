//! The notification email: batched, at most one per recipient per interval
//! (`KFACTOR_NOTIFICATION_EMAIL_MINUTES`, default 15). A recipient's batch is due once their
//! oldest unread notification not yet emailed is an interval old; it then takes every unread
//! notification not yet emailed, so the next one can only be due an interval later. The
//! batch is an email row of the email outbox (a down SMTP server loses nothing), rendered
//! when sent with only what is still unread then; nothing unread, no email.
//!
//! Unsubscribing works without signing in: the link carries a derived token of the user id.
use std::collections::HashMap;

use chrono::Duration;
use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::{preferences, Notification, Preferences, PreferencesChange};
use crate::db::Tx;
use crate::domain::{
    ids::UserId,
    ratelimit::Client,
    tokens::{self, Purpose},
    DomainResult, Services,
};
use crate::outbox;
use entity::{notification_preferences as prefs, notifications, users};

/// The email kind of a notification batch.
pub const EMAIL_KIND: &str = "notifications";
/// Recipients batched per transaction.
const CHUNK: u64 = 500;
/// Notifications older than this are never emailed (e.g. written while email was off).
const STALE_DAYS: i64 = 7;

/// Marks a notification that will never be emailed (its recipient has email off).
const NEVER: Uuid = Uuid::nil();

/// Writes the batches that are due now; returns how many emails it queued.
pub async fn run_due(svc: &Services) -> DomainResult<usize> {
    let mut emails = 0;
    loop {
        let (queued, users) = batch_chunk(svc).await?;
        emails += queued;
        if users < CHUNK as usize {
            return Ok(emails);
        }
    }
}

/// One chunk of due recipients: returns (emails queued, recipients looked at).
async fn batch_chunk(svc: &Services) -> DomainResult<(usize, usize)> {
    let now = svc.now();
    let due_before = now - svc.config.notification_email_interval;
    let pending = || {
        notifications::Entity::find()
            .filter(notifications::Column::EmailBatchId.is_null())
            .filter(notifications::Column::ReadAt.is_null())
    };
    let due: Vec<UserId> = pending()
        .filter(notifications::Column::CreatedAt.lte(due_before))
        .filter(notifications::Column::CreatedAt.gt(now - Duration::days(STALE_DAYS)))
        .select_only()
        .column(notifications::Column::UserId)
        .distinct()
        .order_by_asc(notifications::Column::UserId)
        .limit(CHUNK)
        .into_tuple()
        .all(&svc.db.read)
        .await?;
    if due.is_empty() {
        return Ok((0, 0));
    }
    let ids: Vec<UserId> = due.to_vec();
    let wants: HashMap<UserId, bool> = prefs::Entity::find()
        .filter(prefs::Column::UserId.is_in(ids.iter().copied()))
        .all(&svc.db.read)
        .await?
        .into_iter()
        .map(|p| (p.user_id, p.email))
        .collect();
    let addresses: HashMap<UserId, String> = users::Entity::find()
        .filter(users::Column::Id.is_in(ids.iter().copied()))
        .filter(users::Column::DeletedAt.is_null())
        .all(&svc.db.read)
        .await?
        .into_iter()
        .map(|u| (u.id, u.email))
        .collect();
    let mut tx = Tx::begin(&svc.db).await?;
    let mut emails = Vec::new();
    for user in &ids {
        let to = addresses
            .get(user)
            .filter(|_| wants.get(user).copied().unwrap_or(true));
        let batch = if to.is_some() { Uuid::now_v7() } else { NEVER };
        // Only rows still unbatched: another instance that took them first wins.
        let taken = notifications::Entity::update_many()
            .col_expr(notifications::Column::EmailBatchId, Expr::value(batch))
            .filter(notifications::Column::UserId.eq(*user))
            .filter(notifications::Column::EmailBatchId.is_null())
            .filter(notifications::Column::ReadAt.is_null())
            .exec(&*tx)
            .await?;
        if let (Some(to), true) = (to, taken.rows_affected > 0) {
            emails.push((to.clone(), batch));
        }
    }
    outbox::email::enqueue_many(&mut tx, now, EMAIL_KIND, &emails).await?;
    tx.commit(&svc.bus).await?;
    Ok((emails.len(), ids.len()))
}

/// What a batch email lists when sent: its recipient and the batch's notifications that are
/// still unread, oldest first; None when nothing is left to say (all read, email turned off,
/// the account gone).
pub async fn batch(
    svc: &Services,
    batch: Uuid,
) -> DomainResult<Option<(users::Model, Vec<Notification>)>> {
    let db = &svc.db.read;
    let items = notifications::Entity::find()
        .filter(notifications::Column::EmailBatchId.eq(batch))
        .filter(notifications::Column::ReadAt.is_null())
        .order_by_asc(notifications::Column::Id)
        .all(db)
        .await?;
    let Some(first) = items.first() else {
        return Ok(None);
    };
    let Some(user) = users::Entity::find_by_id(first.user_id.0)
        .filter(users::Column::DeletedAt.is_null())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if !preferences(db, user.id).await?.email {
        return Ok(None);
    }
    Ok(Some((user, items)))
}

/// The link that turns a user's notification email off, without signing in.
pub fn unsubscribe_link(svc: &Services, user: UserId) -> String {
    format!(
        "{}/notifications/unsubscribe/{}",
        svc.config.public_url,
        svc.keys.derive(Purpose::NotificationUnsubscribe, user, 0)
    )
}

/// The live user an unsubscribe token is for (a public token lookup: rate limited).
pub async fn verify_unsubscribe(
    svc: &Services,
    client: &Client,
    token: &str,
) -> DomainResult<(users::Model, Preferences)> {
    let user =
        tokens::user_of_email_link(svc, client, Purpose::NotificationUnsubscribe, token).await?;
    let p = preferences(&svc.db.read, user.id).await?;
    Ok((user, p))
}

/// Turns the token's user's notification email off (`on` false) or on again.
pub async fn set_email(
    svc: &Services,
    client: &Client,
    token: &str,
    on: bool,
) -> DomainResult<users::Model> {
    let (user, _) = verify_unsubscribe(svc, client, token).await?;
    super::update_preferences(
        svc,
        user.id,
        PreferencesChange {
            email: Some(on),
            ..Default::default()
        },
    )
    .await?;
    Ok(user)
}
