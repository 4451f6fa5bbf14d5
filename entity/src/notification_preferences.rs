//! A user's notification preferences; no row means every kind on and email on.
use crate::ids::UserId;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_preferences")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: UserId,
    pub comments: bool,
    pub mentions: bool,
    pub invitation_accepted: bool,
    pub signups: bool,
    pub limit_reached: bool,
    /// Whether notifications are emailed (batched).
    pub email: bool,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
