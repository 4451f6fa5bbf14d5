//! Notifications written in the caller's transaction: one row per recipient, rung to the
//! recipients' live streams only after commit. Who receives what is the rules' decision
//! (`domain::notifications`); this writes what it is given.
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, DbErr, EntityTrait};
use uuid::Uuid;

use crate::db::Tx;
use entity::{
    enums::NotificationKind,
    ids::{CommentId, NotificationId, OrgId, ProjectId, UserId},
    notifications,
};

/// One notification to write.
#[derive(Clone, Debug)]
pub struct Notification {
    /// The recipient.
    pub user: Uuid,
    /// The organization it happened in, if any.
    pub org: Option<Uuid>,
    /// What happened.
    pub kind: NotificationKind,
    /// The user who caused it, if a user did.
    pub actor_user: Option<Uuid>,
    /// Who caused it, as shown.
    pub actor_name: String,
    /// The project it is about.
    pub project: Option<Uuid>,
    /// The comment it is about.
    pub comment: Option<Uuid>,
    /// One human sentence.
    pub summary: String,
}

/// Writes the notifications in one statement; their recipients' streams ring after commit.
pub async fn write(tx: &mut Tx, now: DateTime<Utc>, rows: Vec<Notification>) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    let users: Vec<Uuid> = rows.iter().map(|n| n.user).collect();
    notifications::Entity::insert_many(rows.into_iter().map(|n| notifications::ActiveModel {
        id: Set(NotificationId::generate()),
        user_id: Set(UserId(n.user)),
        organization_id: Set(n.org.map(OrgId)),
        kind: Set(n.kind),
        actor_user_id: Set(n.actor_user.map(UserId)),
        actor_name: Set(n.actor_name),
        project_id: Set(n.project.map(ProjectId)),
        comment_id: Set(n.comment.map(CommentId)),
        summary: Set(n.summary),
        created_at: Set(now),
        read_at: Set(None),
        email_batch_id: Set(None),
    }))
    .exec_without_returning(&**tx)
    .await?;
    tx.queued_notifications(users);
    Ok(())
}
