//! Billing through Stripe: the subscriptions Stripe told us about (which organization each
//! belongs to and its latest state), and the event ids already applied.
use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum StripeSubscriptions {
    Table,
    Id,
    CustomerId,
    OrganizationId,
    Status,
    PriceIds,
    CancelAtPeriodEnd,
    CurrentPeriodEnd,
    EventCreated,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum StripeEvents {
    Table,
    Id,
    EventType,
    Created,
    ReceivedAt,
    Outcome,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // A row exists from the first event naming the subscription: its organization may be
        // learnt later (checkout.session.completed often arrives after the subscription's
        // own events), and its state (`status` …) is null until a subscription event came.
        // A deleted organization leaves the Stripe facts behind, unattached.
        m.create_table(
            Table::create()
                .table(StripeSubscriptions::Table)
                .col(
                    ColumnDef::new(StripeSubscriptions::Id)
                        .string()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(StripeSubscriptions::CustomerId)
                        .string()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(StripeSubscriptions::OrganizationId)
                        .uuid()
                        .null(),
                )
                .col(ColumnDef::new(StripeSubscriptions::Status).string().null())
                .col(
                    ColumnDef::new(StripeSubscriptions::PriceIds)
                        .json_binary()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(StripeSubscriptions::CancelAtPeriodEnd)
                        .boolean()
                        .not_null(),
                )
                .col(ts_null(StripeSubscriptions::CurrentPeriodEnd))
                .col(ts_null(StripeSubscriptions::EventCreated))
                .col(ts(StripeSubscriptions::CreatedAt))
                .col(ts(StripeSubscriptions::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(
                            StripeSubscriptions::Table,
                            StripeSubscriptions::OrganizationId,
                        )
                        .to(Organizations::Table, Organizations::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            (
                "stripe_subscriptions_org_idx",
                StripeSubscriptions::OrganizationId,
            ),
            (
                "stripe_subscriptions_customer_idx",
                StripeSubscriptions::CustomerId,
            ),
        ] {
            m.create_index(
                Index::create()
                    .name(name)
                    .table(StripeSubscriptions::Table)
                    .col(col)
                    .to_owned(),
            )
            .await?;
        }
        m.create_table(
            Table::create()
                .table(StripeEvents::Table)
                .col(
                    ColumnDef::new(StripeEvents::Id)
                        .string()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(StripeEvents::EventType).string().not_null())
                .col(ts(StripeEvents::Created))
                .col(ts(StripeEvents::ReceivedAt))
                .col(ColumnDef::new(StripeEvents::Outcome).string().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("stripe_events_received_idx")
                .table(StripeEvents::Table)
                .col(StripeEvents::ReceivedAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            StripeEvents::Table.into_iden(),
            StripeSubscriptions::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
