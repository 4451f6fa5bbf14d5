//! A signing secret of an endpoint, encrypted under the server secret. The current secret has
//! no `expires_at`; rotated ones keep signing until theirs.
use crate::ids::{WebhookEndpointId, WebhookSecretId};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_secrets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: WebhookSecretId,
    pub endpoint_id: WebhookEndpointId,
    /// base64 of the encrypted key bytes.
    pub ciphertext: String,
    pub created_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
