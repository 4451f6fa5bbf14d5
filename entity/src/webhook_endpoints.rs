//! A third party's HTTPS endpoint. `organization_id` is None for platform endpoints, which
//! receive every organization's events.
use crate::ids::{OrgId, WebhookEndpointId};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: WebhookEndpointId,
    pub organization_id: Option<OrgId>,
    pub url: String,
    pub description: Option<String>,
    /// JSON array of event types; empty = every event type.
    pub event_types: Json,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Start of the current run of failed attempts (None after a success).
    pub failing_since: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
