//! One message to one endpoint, retried on a schedule until it succeeds or gives up.
use crate::ids::{WebhookDeliveryId, WebhookEndpointId, WebhookMessageId};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: WebhookDeliveryId,
    pub endpoint_id: WebhookEndpointId,
    pub message_id: WebhookMessageId,
    /// pending | succeeded | failed
    pub status: crate::enums::DeliveryStatus,
    /// Scheduled attempts made so far (manual ones do not count).
    pub attempts: i32,
    pub next_attempt_at: Option<DateTimeUtc>,
    /// A dispatcher holds the row until then (so several instances never send it twice).
    pub locked_until: Option<DateTimeUtc>,
    /// Which claim holds the lease; a sender only records its outcome under its own lease.
    pub lease_id: Option<Uuid>,
    /// The next attempt was asked for by an operator (redeliver).
    pub manual: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
