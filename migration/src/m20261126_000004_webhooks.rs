//! Webhook endpoints, their signing secrets, deliveries and the attempt log; the outbox
//! learns which messages were already turned into deliveries.
use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    Id,
    OrganizationId,
    Url,
    Description,
    EventTypes,
    Enabled,
    DisabledReason,
    FailingSince,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookSecrets {
    Table,
    Id,
    EndpointId,
    Ciphertext,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    EndpointId,
    MessageId,
    Status,
    Attempts,
    NextAttemptAt,
    LockedUntil,
    LeaseId,
    Manual,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookAttempts {
    Table,
    Id,
    DeliveryId,
    At,
    ResponseStatus,
    DurationMs,
    Error,
    ResponseBody,
    Manual,
}

#[derive(DeriveIden)]
enum WebhookMessages {
    Table,
    Id,
    DispatchedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Platform endpoints (created by staff) have no organization.
        m.create_table(
            Table::create()
                .table(WebhookEndpoints::Table)
                .col(uuid_pk(WebhookEndpoints::Id))
                .col(
                    ColumnDef::new(WebhookEndpoints::OrganizationId)
                        .uuid()
                        .null(),
                )
                .col(ColumnDef::new(WebhookEndpoints::Url).string().not_null())
                .col(
                    ColumnDef::new(WebhookEndpoints::Description)
                        .string()
                        .null(),
                )
                .col(
                    ColumnDef::new(WebhookEndpoints::EventTypes)
                        .json_binary()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(WebhookEndpoints::Enabled)
                        .boolean()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(WebhookEndpoints::DisabledReason)
                        .string()
                        .null(),
                )
                .col(ts_null(WebhookEndpoints::FailingSince))
                .col(ts(WebhookEndpoints::CreatedAt))
                .col(ts(WebhookEndpoints::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(WebhookEndpoints::Table, WebhookEndpoints::OrganizationId)
                        .to(Organizations::Table, Organizations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("webhook_endpoints_org_idx")
                .table(WebhookEndpoints::Table)
                .col(WebhookEndpoints::OrganizationId)
                .col(WebhookEndpoints::Id)
                .to_owned(),
        )
        .await?;

        // Secrets are stored encrypted under the server secret; `expires_at` is null for the
        // current one and set on rotated ones.
        m.create_table(
            Table::create()
                .table(WebhookSecrets::Table)
                .col(uuid_pk(WebhookSecrets::Id))
                .col(ColumnDef::new(WebhookSecrets::EndpointId).uuid().not_null())
                .col(
                    ColumnDef::new(WebhookSecrets::Ciphertext)
                        .string()
                        .not_null(),
                )
                .col(ts(WebhookSecrets::CreatedAt))
                .col(ts_null(WebhookSecrets::ExpiresAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(WebhookSecrets::Table, WebhookSecrets::EndpointId)
                        .to(WebhookEndpoints::Table, WebhookEndpoints::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("webhook_secrets_endpoint_idx")
                .table(WebhookSecrets::Table)
                .col(WebhookSecrets::EndpointId)
                .to_owned(),
        )
        .await?;

        m.alter_table(
            Table::alter()
                .table(WebhookMessages::Table)
                .add_column(ts_null(WebhookMessages::DispatchedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("webhook_messages_dispatched_idx")
                .table(WebhookMessages::Table)
                .col(WebhookMessages::DispatchedAt)
                .col(WebhookMessages::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(WebhookDeliveries::Table)
                .col(uuid_pk(WebhookDeliveries::Id))
                .col(
                    ColumnDef::new(WebhookDeliveries::EndpointId)
                        .uuid()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(WebhookDeliveries::MessageId)
                        .uuid()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(WebhookDeliveries::Status)
                        .string()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(WebhookDeliveries::Attempts)
                        .integer()
                        .not_null(),
                )
                .col(ts_null(WebhookDeliveries::NextAttemptAt))
                .col(ts_null(WebhookDeliveries::LockedUntil))
                .col(ColumnDef::new(WebhookDeliveries::LeaseId).uuid().null())
                .col(
                    ColumnDef::new(WebhookDeliveries::Manual)
                        .boolean()
                        .not_null(),
                )
                .col(ts(WebhookDeliveries::CreatedAt))
                .col(ts(WebhookDeliveries::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(WebhookDeliveries::Table, WebhookDeliveries::EndpointId)
                        .to(WebhookEndpoints::Table, WebhookEndpoints::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(WebhookDeliveries::Table, WebhookDeliveries::MessageId)
                        .to(WebhookMessages::Table, WebhookMessages::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // One delivery per (message, endpoint): fan-out is idempotent.
        m.create_index(
            Index::create()
                .name("webhook_deliveries_message_endpoint_idx")
                .table(WebhookDeliveries::Table)
                .col(WebhookDeliveries::MessageId)
                .col(WebhookDeliveries::EndpointId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("webhook_deliveries_due_idx")
                .table(WebhookDeliveries::Table)
                .col(WebhookDeliveries::Status)
                .col(WebhookDeliveries::NextAttemptAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("webhook_deliveries_endpoint_idx")
                .table(WebhookDeliveries::Table)
                .col(WebhookDeliveries::EndpointId)
                .col(WebhookDeliveries::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(WebhookAttempts::Table)
                .col(uuid_pk(WebhookAttempts::Id))
                .col(
                    ColumnDef::new(WebhookAttempts::DeliveryId)
                        .uuid()
                        .not_null(),
                )
                .col(ts(WebhookAttempts::At))
                .col(
                    ColumnDef::new(WebhookAttempts::ResponseStatus)
                        .integer()
                        .null(),
                )
                .col(
                    ColumnDef::new(WebhookAttempts::DurationMs)
                        .integer()
                        .not_null(),
                )
                .col(ColumnDef::new(WebhookAttempts::Error).string().null())
                .col(ColumnDef::new(WebhookAttempts::ResponseBody).text().null())
                .col(ColumnDef::new(WebhookAttempts::Manual).boolean().not_null())
                .foreign_key(
                    ForeignKey::create()
                        .from(WebhookAttempts::Table, WebhookAttempts::DeliveryId)
                        .to(WebhookDeliveries::Table, WebhookDeliveries::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("webhook_attempts_delivery_idx")
                .table(WebhookAttempts::Table)
                .col(WebhookAttempts::DeliveryId)
                .col(WebhookAttempts::Id)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            WebhookAttempts::Table.into_iden(),
            WebhookDeliveries::Table.into_iden(),
            WebhookSecrets::Table.into_iden(),
            WebhookEndpoints::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        m.drop_index(
            Index::drop()
                .name("webhook_messages_dispatched_idx")
                .table(WebhookMessages::Table)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(WebhookMessages::Table)
                .drop_column(WebhookMessages::DispatchedAt)
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
