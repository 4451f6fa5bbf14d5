//! A person with an account.
use crate::ids::{OrgId, UserId};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: UserId,
    /// Trimmed and lower-cased; unique.
    pub email: String,
    pub name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// organic | invite | share | referral | paid, frozen at signup.
    pub acquisition_source: crate::enums::AcquisitionSource,
    pub invited_by_user_id: Option<UserId>,
    pub invite_token_id: Option<Uuid>,
    pub utm_source: Option<String>,
    pub referral_code: String,
    pub activated_at: Option<DateTimeUtc>,
    pub is_staff: bool,
    pub active_organization_id: Option<OrgId>,
    pub created_at: DateTimeUtc,
    /// The organization credited with the signup, frozen at signup: the invitation's or the
    /// shared link's organization, or the referrer's active organization.
    pub attributed_organization_id: Option<OrgId>,
    /// When the address was proven (a link that arrived by email was used); null: not yet.
    pub email_verified_at: Option<DateTimeUtc>,
    /// Set when the account was deleted: the row stays as an anonymous tombstone (no email,
    /// no name, no password) so the growth facts that point at it survive.
    pub deleted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
