//! Usage counters of periodic limits, limit alerts, per-organization overrides, and
//! idempotency keys.
use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UsageCounters {
    Table,
    OrganizationId,
    Feature,
    PeriodStart,
    Used,
}

#[derive(DeriveIden)]
enum UsageAlerts {
    Table,
    OrganizationId,
    Feature,
    PeriodStart,
    Threshold,
    CreatedAt,
}

#[derive(DeriveIden)]
enum EntitlementOverrides {
    Table,
    OrganizationId,
    Feature,
    LimitValue,
    Unlimited,
    Enabled,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Scope,
    Key,
    RequestHash,
    Response,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Lazy periods: a new period simply has no row yet; nothing resets anything.
        m.create_table(
            Table::create()
                .table(UsageCounters::Table)
                .col(
                    ColumnDef::new(UsageCounters::OrganizationId)
                        .uuid()
                        .not_null(),
                )
                .col(ColumnDef::new(UsageCounters::Feature).string().not_null())
                .col(
                    ColumnDef::new(UsageCounters::PeriodStart)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(ColumnDef::new(UsageCounters::Used).big_integer().not_null())
                .primary_key(
                    Index::create()
                        .col(UsageCounters::OrganizationId)
                        .col(UsageCounters::Feature)
                        .col(UsageCounters::PeriodStart),
                )
                .foreign_key(&mut org_fk(
                    UsageCounters::Table,
                    UsageCounters::OrganizationId,
                ))
                .to_owned(),
        )
        .await?;
        // One alert per (org, feature, period, threshold): crossing 80 % and reaching 100 %
        // are announced once per period, not once per refused request.
        m.create_table(
            Table::create()
                .table(UsageAlerts::Table)
                .col(
                    ColumnDef::new(UsageAlerts::OrganizationId)
                        .uuid()
                        .not_null(),
                )
                .col(ColumnDef::new(UsageAlerts::Feature).string().not_null())
                .col(
                    ColumnDef::new(UsageAlerts::PeriodStart)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(ColumnDef::new(UsageAlerts::Threshold).integer().not_null())
                .col(
                    ColumnDef::new(UsageAlerts::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(UsageAlerts::OrganizationId)
                        .col(UsageAlerts::Feature)
                        .col(UsageAlerts::PeriodStart)
                        .col(UsageAlerts::Threshold),
                )
                .foreign_key(&mut org_fk(UsageAlerts::Table, UsageAlerts::OrganizationId))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(EntitlementOverrides::Table)
                .col(
                    ColumnDef::new(EntitlementOverrides::OrganizationId)
                        .uuid()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(EntitlementOverrides::Feature)
                        .string()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(EntitlementOverrides::LimitValue)
                        .big_integer()
                        .null(),
                )
                .col(
                    ColumnDef::new(EntitlementOverrides::Unlimited)
                        .boolean()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(EntitlementOverrides::Enabled)
                        .boolean()
                        .null(),
                )
                .col(
                    ColumnDef::new(EntitlementOverrides::ExpiresAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(
                    ColumnDef::new(EntitlementOverrides::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(EntitlementOverrides::OrganizationId)
                        .col(EntitlementOverrides::Feature),
                )
                .foreign_key(&mut org_fk(
                    EntitlementOverrides::Table,
                    EntitlementOverrides::OrganizationId,
                ))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(IdempotencyKeys::Table)
                .col(ColumnDef::new(IdempotencyKeys::Scope).string().not_null())
                .col(ColumnDef::new(IdempotencyKeys::Key).string().not_null())
                .col(
                    ColumnDef::new(IdempotencyKeys::RequestHash)
                        .string()
                        .not_null(),
                )
                .col(ColumnDef::new(IdempotencyKeys::Response).text().null())
                .col(
                    ColumnDef::new(IdempotencyKeys::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(IdempotencyKeys::Scope)
                        .col(IdempotencyKeys::Key),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            IdempotencyKeys::Table.into_iden(),
            EntitlementOverrides::Table.into_iden(),
            UsageAlerts::Table.into_iden(),
            UsageCounters::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
