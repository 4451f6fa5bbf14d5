//! A workspace: the tenant every org-owned row belongs to.
use crate::ids::OrgId;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organizations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: OrgId,
    pub name: String,
    /// any_member | admins_only
    pub invite_policy: crate::enums::InvitePolicy,
    pub plan_key: String,
    /// The day the current plan started; periodic limits are counted from it.
    pub billing_anchor: DateTimeUtc,
    pub created_at: DateTimeUtc,
    /// `deleteOrganization` was called: the organization is removed at this time unless an
    /// owner restores it first.
    pub deletion_scheduled_for: Option<DateTimeUtc>,
    /// Removed: the row stays as an anonymous tombstone for the growth facts that point at it.
    pub deleted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
