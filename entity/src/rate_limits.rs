//! A rate-limit bucket shared by every instance (GCRA): `tat_ms` is when it is full again.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rate_limits")]
pub struct Model {
    /// `<limit>:<HMAC of the address or email>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub tat_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
