//! The attribution log: who invited, shared or referred whom, and which signup resulted.
use crate::ids::{OrgId, ReferralEventId, UserId};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "referral_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ReferralEventId,
    pub organization_id: Option<OrgId>,
    pub actor_user_id: Option<UserId>,
    /// invited | shared | accepted | signed_up
    pub action: String,
    /// invitation | shared_link | referral_code
    pub resource_type: Option<String>,
    pub resource_id: Option<Uuid>,
    pub resulted_in_signup_id: Option<UserId>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
