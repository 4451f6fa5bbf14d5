//! Notifications written in the caller's transaction: one row per recipient, rung to the
//! recipients' live streams only after commit. Who receives what is the rules' decision
//! (`domain::notifications`); this writes what it is given.
use crate::db::Tx;
use chrono::{DateTime, Utc};
use entity::{
    enums::NotificationKind,
    ids::{CommentId, NotificationId, OrgId, ProjectId, UserId},
    notifications,
};
use sea_orm::{ActiveValue::Set, DbErr, EntityTrait};

/// One notification to write.
#[derive(Clone, Debug)]
pub struct Notification {
    /// The recipient.
    pub user: UserId,
    /// The organization it happened in, if any.
    pub org: Option<OrgId>,
    /// What happened.
    pub kind: NotificationKind,
    /// The user who caused it, if a user did.
    pub actor_user: Option<UserId>,
    /// Who caused it, as shown.
    pub actor_name: String,
    /// The project it is about.
    pub project: Option<ProjectId>,
    /// The comment it is about.
    pub comment: Option<CommentId>,
    /// One human sentence.
    pub summary: String,
}

/// Writes the notifications in one statement; their recipients' streams ring after commit.
pub async fn write(tx: &mut Tx, now: DateTime<Utc>, rows: Vec<Notification>) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    let users: Vec<UserId> = rows.iter().map(|n| n.user).collect();
    notifications::Entity::insert_many(rows.into_iter().map(|n| notifications::ActiveModel {
        id: Set(NotificationId::generate()),
        user_id: Set(n.user),
        organization_id: Set(n.org),
        kind: Set(n.kind),
        actor_user_id: Set(n.actor_user),
        actor_name: Set(n.actor_name),
        project_id: Set(n.project),
        comment_id: Set(n.comment),
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
