//! A shared link to a resource. Its token is derived from (id, token_version), never stored.
use crate::ids::{OrgId, SharedLinkId, UserId};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "shared_links")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: SharedLinkId,
    pub organization_id: OrgId,
    /// PROJECT
    pub resource_type: crate::enums::ResourceType,
    pub resource_id: Uuid,
    /// view | comment | edit
    pub permission: crate::enums::Permission,
    /// anyone | organization
    pub audience: crate::enums::Audience,
    pub created_by_user_id: UserId,
    pub token_version: i32,
    pub surface: Option<String>,
    pub expires_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    /// Maintained in the same transaction as the visit rows they count.
    pub access_count: i64,
    pub unique_visitors: i64,
    pub first_accessed_at: Option<DateTimeUtc>,
    pub last_accessed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
