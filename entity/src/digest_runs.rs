//! One weekly digest of one scope (an organization, or the nil UUID for the platform). Its
//! unique (scope, week) makes the digest exactly-once: the emails and the webhook message are
//! written in the transaction that inserts the row.
use crate::ids::DigestRunId;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "digest_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: DigestRunId,
    /// The organization, or the nil UUID for the platform digest.
    pub scope_id: Uuid,
    /// Monday of the digested week, `YYYY-MM-DD` (UTC).
    pub week_start: String,
    /// The numbers the emails and the webhook message carry (the webhook `data`).
    pub numbers: Json,
    /// Emails queued for it.
    pub recipients: i32,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
