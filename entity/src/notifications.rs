//! One notification of one user: something that happened to them, written in the
//! transaction of its cause.
use sea_orm::entity::prelude::*;

use crate::{
    enums::NotificationKind,
    ids::{CommentId, NotificationId, OrgId, ProjectId, UserId},
};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: NotificationId,
    /// The recipient.
    pub user_id: UserId,
    /// The organization it happened in; None when it concerns the user alone.
    pub organization_id: Option<OrgId>,
    pub kind: NotificationKind,
    /// Who caused it, when a user did.
    pub actor_user_id: Option<UserId>,
    /// The display name of whoever caused it (a guest's chosen name, or "kfactor").
    pub actor_name: String,
    pub project_id: Option<ProjectId>,
    pub comment_id: Option<CommentId>,
    #[sea_orm(column_type = "Text")]
    pub summary: String,
    pub created_at: DateTimeUtc,
    pub read_at: Option<DateTimeUtc>,
    /// The email batch that listed it.
    pub email_batch_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
