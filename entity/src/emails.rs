//! The email outbox: what to send to whom, rendered at send time (so no token is stored).
use crate::ids::EmailId;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "emails")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: EmailId,
    /// e.g. "invitation"
    pub kind: String,
    pub recipient: String,
    /// The row the message is about (e.g. the invitation) and its version at enqueue time: a
    /// polymorphic reference (its kind follows from `kind`), so a bare UUID.
    pub subject_id: Uuid,
    pub subject_version: i32,
    /// pending | sent | failed | superseded
    pub status: crate::enums::EmailStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    /// A sender holds the row until then (so several instances never send it twice).
    pub locked_until: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
