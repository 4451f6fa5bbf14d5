//! The log of a delivery's HTTP attempts.
use crate::ids::{WebhookAttemptId, WebhookDeliveryId};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: WebhookAttemptId,
    pub delivery_id: WebhookDeliveryId,
    pub at: DateTimeUtc,
    pub response_status: Option<i32>,
    pub duration_ms: i32,
    pub error: Option<String>,
    /// At most 1 KiB of the response body.
    pub response_body: Option<String>,
    pub manual: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
