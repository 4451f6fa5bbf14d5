//! One send of an invitation (first or re-send), for rate limiting.
use crate::ids::{InvitationId, InvitationSendId, UserId};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invitation_sends")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: InvitationSendId,
    pub invitation_id: InvitationId,
    pub sender_user_id: UserId,
    pub sent_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
