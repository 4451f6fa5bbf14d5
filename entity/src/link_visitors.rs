//! The distinct visitors of a shared link.
use crate::ids::SharedLinkId;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "link_visitors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub shared_link_id: SharedLinkId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub visitor_id: String,
    pub first_seen_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
