//! The webhook outbox: one row per event a third party may want, written in the domain
//! transaction. The dispatcher turns each into deliveries after commit.
use crate::ids::{OrgId, WebhookMessageId};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_messages")]
pub struct Model {
    /// UUIDv7; the `webhook-id` header is derived from it ("msg_…").
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: WebhookMessageId,
    /// None for platform-level events.
    pub organization_id: Option<OrgId>,
    /// e.g. "referral.signup"
    pub event_type: String,
    /// The exact envelope `{"type","timestamp","data"}` that is signed and sent.
    pub payload: Json,
    pub created_at: DateTimeUtc,
    /// When the dispatcher turned it into deliveries (None: not yet).
    pub dispatched_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
