//! A single-use link sent by email: verify an address, reset a password, or confirm a new
//! address. The token is derived from the id (never stored).
use crate::ids::{EmailTokenId, UserId};
use sea_orm::entity::prelude::*;

/// What a link does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum Purpose {
    /// Proves the account's current address.
    #[sea_orm(string_value = "verify_email")]
    VerifyEmail,
    /// Sets a new password.
    #[sea_orm(string_value = "reset_password")]
    ResetPassword,
    /// Proves a new address and makes it the account's.
    #[sea_orm(string_value = "change_email")]
    ChangeEmail,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: EmailTokenId,
    /// Null for a reset requested for an address without an account.
    pub user_id: Option<UserId>,
    pub purpose: Purpose,
    /// The address the link was sent to.
    pub email: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
