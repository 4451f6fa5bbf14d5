//! Account safety: rate-limit buckets shared by instances, verified addresses, single-use
//! email tokens (verification, password reset, email change), what a session was started
//! from, and the tombstones of deleted accounts and organizations.
use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RateLimits {
    Table,
    Key,
    TatMs,
}

#[derive(DeriveIden)]
enum EmailTokens {
    Table,
    Id,
    UserId,
    Purpose,
    Email,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    EmailVerifiedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    UserAgent,
    Ip,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    DeletionScheduledFor,
    DeletedAt,
}

/// SQLite takes one change per `ALTER TABLE`.
async fn add_column(
    m: &SchemaManager<'_>,
    table: impl IntoIden,
    col: ColumnDef,
) -> Result<(), DbErr> {
    m.alter_table(Table::alter().table(table).add_column(col).to_owned())
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // GCRA buckets: the time (ms since the epoch) at which a bucket is full again. Keys
        // are HMACs, so the table names no address or email.
        m.create_table(
            Table::create()
                .table(RateLimits::Table)
                .col(
                    ColumnDef::new(RateLimits::Key)
                        .string()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(RateLimits::TatMs).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("rate_limits_tat_idx")
                .table(RateLimits::Table)
                .col(RateLimits::TatMs)
                .to_owned(),
        )
        .await?;

        // Tokens are derived from the row id (never stored); `email` is the address the
        // link was sent to. `user_id` is null for a reset requested for an unknown address
        // (the row exists anyway, so both cases cost the same).
        m.create_table(
            Table::create()
                .table(EmailTokens::Table)
                .col(uuid_pk(EmailTokens::Id))
                .col(ColumnDef::new(EmailTokens::UserId).uuid().null())
                .col(ColumnDef::new(EmailTokens::Purpose).string().not_null())
                .col(ColumnDef::new(EmailTokens::Email).string().not_null())
                .col(ts(EmailTokens::CreatedAt))
                .col(ts(EmailTokens::ExpiresAt))
                .col(ts_null(EmailTokens::UsedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(EmailTokens::Table, EmailTokens::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("email_tokens_user_idx")
                .table(EmailTokens::Table)
                .col(EmailTokens::UserId)
                .col(EmailTokens::Purpose)
                .to_owned(),
        )
        .await?;

        // Accounts that existed before this migration start unverified (NULL).
        add_column(m, Users::Table, ts_null(Users::EmailVerifiedAt)).await?;
        add_column(m, Users::Table, ts_null(Users::DeletedAt)).await?;
        add_column(
            m,
            Sessions::Table,
            ColumnDef::new(Sessions::UserAgent)
                .string()
                .null()
                .to_owned(),
        )
        .await?;
        add_column(
            m,
            Sessions::Table,
            ColumnDef::new(Sessions::Ip).string().null().to_owned(),
        )
        .await?;
        add_column(
            m,
            Organizations::Table,
            ts_null(Organizations::DeletionScheduledFor),
        )
        .await?;
        add_column(m, Organizations::Table, ts_null(Organizations::DeletedAt)).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(EmailTokens::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(RateLimits::Table).to_owned())
            .await?;
        Ok(())
    }
}
