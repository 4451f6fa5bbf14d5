//! One entry of an organization's activity feed, written in the transaction of the change
//! it describes.
use crate::ids::{ActivityId, OrgId, UserId};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "activity_events")]
pub struct Model {
    /// UUIDv7: ordering by id is ordering by time.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ActivityId,
    pub organization_id: OrgId,
    /// The ActivityType in SCREAMING_SNAKE_CASE, e.g. MEMBER_JOINED.
    pub event_type: crate::enums::ActivityType,
    pub actor_user_id: Option<UserId>,
    pub actor_guest_name: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<Uuid>,
    pub summary: String,
    pub data: Json,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
