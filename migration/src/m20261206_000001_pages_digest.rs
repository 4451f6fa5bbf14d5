//! Browser sessions for the pages (a kind on `sessions`), and the weekly digest: one row per
//! (organization or platform, week) written with the digest's emails and webhook message, and
//! the users who opted out of it.
use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Kind,
}

#[derive(DeriveIden)]
enum DigestRuns {
    Table,
    Id,
    ScopeId,
    WeekStart,
    Numbers,
    Recipients,
    CreatedAt,
}

#[derive(DeriveIden)]
enum DigestOptOuts {
    Table,
    UserId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Every existing session is an API (bearer) session; the pages' cookie sessions are
        // `page` and never authenticate an API request.
        m.alter_table(
            Table::alter()
                .table(Sessions::Table)
                .add_column(
                    ColumnDef::new(Sessions::Kind)
                        .string()
                        .not_null()
                        .default("api"),
                )
                .to_owned(),
        )
        .await?;

        // The digest of one scope (an organization, or the nil UUID for the platform) for
        // one week. The unique (scope, week) is what makes the digest exactly-once: its
        // emails and webhook message are written in the transaction that inserts it.
        m.create_table(
            Table::create()
                .table(DigestRuns::Table)
                .col(uuid_pk(DigestRuns::Id))
                .col(ColumnDef::new(DigestRuns::ScopeId).uuid().not_null())
                .col(ColumnDef::new(DigestRuns::WeekStart).string().not_null())
                .col(ColumnDef::new(DigestRuns::Numbers).json_binary().not_null())
                .col(ColumnDef::new(DigestRuns::Recipients).integer().not_null())
                .col(ts(DigestRuns::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("digest_runs_scope_week_idx")
                .table(DigestRuns::Table)
                .col(DigestRuns::ScopeId)
                .col(DigestRuns::WeekStart)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("digest_runs_week_idx")
                .table(DigestRuns::Table)
                .col(DigestRuns::WeekStart)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(DigestOptOuts::Table)
                .col(uuid_pk(DigestOptOuts::UserId))
                .col(ts(DigestOptOuts::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(DigestOptOuts::Table, DigestOptOuts::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(DigestOptOuts::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(DigestRuns::Table).to_owned())
            .await?;
        Ok(())
    }
}
