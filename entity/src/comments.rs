//! A comment on a project, by a member or by a guest through a shared link.
use sea_orm::entity::prelude::*;

use crate::ids::{CommentId, OrgId, ProjectId, SharedLinkId, UserId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "comments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: CommentId,
    pub project_id: ProjectId,
    pub organization_id: OrgId,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    pub author_user_id: Option<UserId>,
    pub guest_name: Option<String>,
    /// The guest's visitor id; a later signup with it claims the comment.
    pub visitor_id: Option<String>,
    pub shared_link_id: Option<SharedLinkId>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
