//! Emails written in the caller's transaction: a row in `emails` that the mailer (a worker)
//! claims, renders and sends after commit. The rules enqueue here, never through the sender.
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DbErr, EntityTrait};
use uuid::Uuid;

use crate::db::Tx;
use entity::{emails, enums::EmailStatus, ids::EmailId};

/// A new, pending email row: due now, never tried.
fn pending(
    now: DateTime<Utc>,
    kind: &str,
    recipient: String,
    subject_id: Uuid,
    subject_version: i32,
) -> emails::ActiveModel {
    emails::ActiveModel {
        id: Set(EmailId::generate()),
        kind: Set(kind.into()),
        recipient: Set(recipient),
        subject_id: Set(subject_id),
        subject_version: Set(subject_version),
        status: Set(EmailStatus::Pending),
        attempts: Set(0),
        next_attempt_at: Set(now),
        locked_until: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        sent_at: Set(None),
    }
}

/// Queues an email in the caller's transaction; the mailer is woken after commit.
pub async fn enqueue(
    tx: &mut Tx,
    now: DateTime<Utc>,
    kind: &str,
    recipient: &str,
    subject_id: impl Into<Uuid>,
    subject_version: i32,
) -> Result<(), DbErr> {
    pending(
        now,
        kind,
        recipient.into(),
        subject_id.into(),
        subject_version,
    )
    .insert(&**tx)
    .await?;
    tx.queued_email();
    Ok(())
}

/// Queues one email of `kind` per (recipient, subject row) in the caller's transaction, in
/// one statement.
pub async fn enqueue_many(
    tx: &mut Tx,
    now: DateTime<Utc>,
    kind: &str,
    rows: &[(String, Uuid)],
) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    emails::Entity::insert_many(
        rows.iter()
            .map(|(recipient, subject)| pending(now, kind, recipient.clone(), *subject, 0)),
    )
    .exec_without_returning(&**tx)
    .await?;
    tx.queued_email();
    Ok(())
}
