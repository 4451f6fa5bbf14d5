//! One open of a shared link.
use crate::ids::{LinkVisitId, OrgId, SharedLinkId, UserId};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "link_visits")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: LinkVisitId,
    pub shared_link_id: SharedLinkId,
    pub organization_id: OrgId,
    /// A signed-in visitor's user id, a guest's visitor id, or one per request.
    pub visitor_id: String,
    pub user_id: Option<UserId>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
