//! A project: the artifact people create and share.
use sea_orm::entity::prelude::*;

use crate::ids::{OrgId, ProjectId, UserId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "projects")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ProjectId,
    pub organization_id: OrgId,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub content: String,
    pub created_by_user_id: Option<UserId>,
    pub created_by_guest_name: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
